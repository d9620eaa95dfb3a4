"""The admin site: Django's, with a second factor for staff (django-otp) when ADMIN_OTP_REQUIRED.

Installed through ``balance_project.admin_apps.BalanceAdminConfig`` in place of
``django.contrib.admin``, so ``admin.site`` (and every ``@admin.register``) is this site and no
second, unprotected site exists. With the flag on, a staff user who has not verified a TOTP device
in this session is treated as not staff: every admin page sends them to the login form, which asks
for the password and the token (docs/admin.md).

Every page of the site carries ``integrity_alert`` (ledger/integrity_status.py) for a user who may
see the admin: while the ledger is not known to verify, admin/base_site.html
(balance_project/templates) shows it as a red banner naming the problems (docs/monitoring.md).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.sites import AdminSite
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class BalanceOTPAuthenticationForm(OTPAdminAuthenticationForm):
    """Password and code in one step when the user has exactly one device (the usual case):
    django-otp would first ask which device, since with several a code must not be tried on each."""

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            device = devices[0] if len(devices) == 1 else None
        return device


class BalanceAdminSite(OTPAdminSite):
    site_header = "Balance administration"
    site_title = "Balance admin"

    def __init__(self, name: str = "admin") -> None:
        # OTPAdminSite names itself "otpadmin"; the URLs are reversed as "admin:..." everywhere.
        super().__init__(name)

    # Read per request, not at import, so a settings override (tests, a flag flip) takes effect.
    @property
    def login_form(self):
        return BalanceOTPAuthenticationForm if settings.ADMIN_OTP_REQUIRED else AdminAuthenticationForm

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.ADMIN_OTP_REQUIRED else None

    def each_context(self, request):
        context = super().each_context(request)
        # Only for staff who may see the admin: the login page tells an anonymous visitor nothing.
        if self.has_permission(request):
            from ledger.integrity_status import integrity_alert

            context["integrity_alert"] = integrity_alert()
        return context

    def has_permission(self, request) -> bool:
        if settings.ADMIN_OTP_REQUIRED:
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)
