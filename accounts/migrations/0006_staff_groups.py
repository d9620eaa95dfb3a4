"""The staff groups, with least privilege (docs/admin.md). Each is set to exactly these permissions.

- support: find players and see their money and history, freeze and unfreeze wallets, release
  stuck reservations, make manual adjustments (above the four-eyes threshold only as a proposal).
  Never exports.
- finance: the ledger, its exports and the integrity reports. Never moves money or freezes.
- supervisor: approves or rejects another staff member's adjustment proposal (four eyes).

Written out here, not imported, so this migration means the same whatever the code becomes; a
change to a group is a new migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

STAFF_GROUPS = {
    "support": [
        "accounts.view_account",
        "accounts.freeze_account",
        "accounts.adjust_balance",
        "accounts.view_adjustmentproposal",
        "ledger.view_transaction",
        "ledger.view_entry",
        "reservations.view_reservation",
        "reservations.view_reservationevent",
        "reservations.release_reservation",
        "tables.view_table",
        "tables.view_seat",
        "tables.view_hand",
    ],
    "finance": [
        "accounts.view_account",
        "accounts.view_adjustmentproposal",
        "ledger.view_transaction",
        "ledger.view_entry",
        "ledger.export_ledger",
        "ledger.view_checkpoint",
        "ledger.view_integrityrun",
    ],
    "supervisor": [
        "accounts.view_account",
        "accounts.view_adjustmentproposal",
        "accounts.approve_adjustment",
        "ledger.view_transaction",
        "ledger.view_entry",
    ],
}


def groups_create(apps, schema_editor):
    # Permissions are otherwise made after all migrations (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in STAFF_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        chosen = []
        for perm in perms:
            app_label, codename = perm.split(".")
            chosen.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(chosen)


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=STAFF_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_adjustment_proposal"),
        ("ledger", "0006_export_permission"),
        ("reservations", "0003_pg_hot_path"),
        ("tables", "0002_pg_hot_path"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups_create, groups_delete)]
