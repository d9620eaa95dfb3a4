"""``django.contrib.admin`` with this service's site as ``admin.site`` (balance_project/admin_site.py).

Apart from the site itself because INSTALLED_APPS imports this module before models can load.
"""

from django.contrib.admin.apps import AdminConfig


class BalanceAdminConfig(AdminConfig):
    default_site = "balance_project.admin_site.BalanceAdminSite"
