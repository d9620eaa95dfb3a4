"""Player protection in the staff groups (docs/admin.md, docs/player-protection.md).

- support sees a player's limits, exclusions and their audit trail, and starts the exclusion a
  player asks for (it cannot be shortened or lifted by anyone).
- finance sees the same (the limits and exclusions audit report is theirs).

Written out here, not imported, like 0006.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED = {
    "support": [
        "accounts.view_playerlimit",
        "accounts.view_selfexclusion",
        "accounts.view_protectionevent",
        "accounts.add_selfexclusion",
    ],
    "finance": ["accounts.view_playerlimit", "accounts.view_selfexclusion", "accounts.view_protectionevent"],
}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    return [
        Permission.objects.get(content_type__app_label=name.split(".")[0], codename=name.split(".")[1])
        for name in names
    ]


def permissions_add(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for name, perms in ADDED.items():
        Group.objects.get(name=name).permissions.add(*_permissions(apps, perms))


def permissions_remove(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name, perms in ADDED.items():
        Group.objects.get(name=name).permissions.remove(*_permissions(apps, perms))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_staff_groups")]

    operations = [migrations.RunPython(permissions_add, permissions_remove)]
