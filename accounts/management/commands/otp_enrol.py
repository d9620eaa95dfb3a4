"""Give a staff user a TOTP device for the admin's second factor, and show it once to scan.

    python manage.py otp_enrol <username> [--name "alice's phone"] [--replace] [--no-qr]

Prints the otpauth:// URL and, unless --no-qr, the same as a QR code in the terminal: scan it with
an authenticator app (any RFC 6238 app), then log in to the admin with the password and the
6-digit code. The device is confirmed at once, since the person running this sees the secret;
run it where only they can read the output. --replace first removes the user's TOTP devices (a
lost or new phone). docs/admin.md.
"""

from __future__ import annotations

import getpass
import io
import logging

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

logger = logging.getLogger("accounts.admin")


class Command(BaseCommand):
    help = "Enrol a TOTP device for a staff user (the admin's second factor) and print its QR code."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="A label for the device (max 64 characters).")
        parser.add_argument("--replace", action="store_true", help="Remove the user's existing TOTP devices first.")
        parser.add_argument("--no-qr", action="store_true", help="Print only the otpauth:// URL.")

    def handle(self, *args, username: str, name: str, replace: bool, no_qr: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}: create one first (manage.py createsuperuser)")
        if not user.is_staff:
            raise CommandError(f"{username!r} is not staff: only staff use the admin")
        name = name.strip()
        if not name or len(name) > 64:
            raise CommandError("--name must be 1 to 64 characters")
        with transaction.atomic():
            existing = TOTPDevice.objects.filter(user=user)
            if existing.exists() and not replace:
                raise CommandError(
                    f"{username!r} already has a TOTP device: pass --replace to remove it and enrol a new one"
                )
            removed, _ = existing.delete()
            device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        # Who ran it, for the audit trail: the command has no admin user of its own.
        logger.info(
            "otp_enrol: TOTP device %s enrolled for %s by OS user %s (removed %d)",
            device.pk,
            username,
            getpass.getuser(),
            removed,
        )
        url = device.config_url
        self.stdout.write(f"TOTP device {device.pk} ({name}) enrolled for {username}.")
        self.stdout.write(f"otpauth URL (secret: keep it private): {url}")
        if not no_qr:
            code = qrcode.QRCode(border=1)
            code.add_data(url)
            drawing = io.StringIO()
            code.print_ascii(out=drawing)
            self.stdout.write(drawing.getvalue(), ending="")
        self.stdout.write("Scan it with an authenticator app, then log in to /admin/ with password and code.")
