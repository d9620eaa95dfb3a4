"""Logged-in admin clients: a superuser, and staff users with chosen permissions.

Each logs in as a person would, with both factors: the session holds the user and a confirmed TOTP
device verified for them (what django-otp's login form stores), so ADMIN_OTP_REQUIRED stays on.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def login(user: User, *, otp: bool = True) -> Client:
    """A client logged in as ``user``; with ``otp``, also verified by a TOTP device of theirs."""
    client = Client()
    client.force_login(user)
    if otp:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        device = device or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def superuser(db) -> User:
    user = User(username="root-admin", is_staff=True, is_superuser=True)
    user.set_unusable_password()
    user.save()
    return user


@pytest.fixture
def admin(superuser) -> Client:
    return login(superuser)


@pytest.fixture
def staff(db):
    """``staff("accounts.view_account", ...)`` -> a client logged in as a staff user with those permissions."""

    def make(*perms: str, username: str = "support") -> Client:
        user = User(username=username, is_staff=True)
        user.set_unusable_password()
        user.save()
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return login(user)

    return make


def form_token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the adjustment form carries a one-time token"
    return match.group(1)
