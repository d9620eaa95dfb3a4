"""Logged-in admin clients: a superuser, and staff users with chosen permissions."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
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
