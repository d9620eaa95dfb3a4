"""Admin login: lockout after repeated failures (django-axes), a TOTP second factor (django-otp),
enrolment by command, and the admin off the public API port when configured so."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import clear_url_caches
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.keys import api_key_create

from .conftest import login

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # 30 failed logins at PBKDF2's cost would take half a minute; the lockout is what is tested.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clerk(db) -> User:
    user = User.objects.create_user("clerk", password=PASSWORD, is_staff=True, is_superuser=True)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def token(user: User) -> str:
    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def post_login(client: Client, username: str, password: str, otp: str = "", **extra):
    return client.post(LOGIN, {"username": username, "password": password, "otp_token": otp}, **extra)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_password_and_token_log_in_and_open_the_admin(clerk):
    client = Client()
    response = post_login(client, "clerk", PASSWORD, token(clerk))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/accounts/account/").status_code == 200


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(clerk, settings):
    assert settings.AXES_FAILURE_LIMIT < 30
    client = Client()
    for attempt in range(30):
        response = post_login(client, "clerk", f"wrong-{attempt}", token(clerk))
        assert response.status_code in (200, 429) and not logged_in(client)
    response = post_login(client, "clerk", PASSWORD, token(clerk))
    assert response.status_code == 429
    assert "Login locked" in response.content.decode()
    assert not logged_in(client)
    assert client.get("/admin/accounts/account/").status_code == 302  # to the login page
    # Another browser from the same address is locked out too; so is the user from another address.
    assert post_login(Client(), "clerk", PASSWORD, token(clerk)).status_code == 429
    assert post_login(Client(), "clerk", PASSWORD, token(clerk), REMOTE_ADDR="10.9.8.7").status_code == 429


def test_failures_for_many_user_names_lock_the_address(clerk, settings):
    client = Client(REMOTE_ADDR="10.1.1.1")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        post_login(client, f"guess-{attempt}", "nope")
    assert post_login(client, "clerk", PASSWORD, token(clerk)).status_code == 429
    # The user itself is not locked: from another address they log in.
    other = Client(REMOTE_ADDR="10.2.2.2")
    assert post_login(other, "clerk", PASSWORD, token(clerk)).status_code == 302 and logged_in(other)


def test_after_the_cool_off_the_right_password_logs_in_again(clerk, settings):
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        post_login(client, "clerk", f"wrong-{attempt}")
    assert post_login(client, "clerk", PASSWORD, token(clerk)).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    response = post_login(client, "clerk", PASSWORD, token(clerk))
    assert response.status_code == 302 and logged_in(client)


def test_an_admin_lockout_does_not_touch_api_keys(clerk, settings, wallet):
    alice = wallet("alice", funded=5)
    raw, _ = api_key_create(client="cashier", scopes=["accounts:read"])
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        post_login(client, "clerk", f"wrong-{attempt}")
    assert post_login(client, "clerk", PASSWORD, token(clerk)).status_code == 429
    response = client.get(f"/api/v1/accounts/{alice}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200 and response.json()["balance"] == 5


def test_no_verified_device_no_admin(clerk):
    unverified = login(clerk, otp=False)
    for url in ("/admin/", "/admin/accounts/account/", "/admin/ledger/entry/export/"):
        response = unverified.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert login(clerk).get("/admin/accounts/account/").status_code == 200


@pytest.mark.parametrize("otp", ["", "000000", "abcdef"])
def test_the_password_alone_or_a_wrong_code_does_not_log_in(clerk, otp):
    client = Client()
    response = post_login(client, "clerk", PASSWORD, otp)
    assert response.status_code == 200 and not logged_in(client)
    assert response.context["form"].errors


def test_a_staff_user_without_a_device_cannot_log_in(db):
    User.objects.create_user("newbie", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    assert post_login(client, "newbie", PASSWORD, "123456").status_code == 200
    assert not logged_in(client)


def test_otp_enrol_prints_the_url_and_qr_and_the_device_logs_in(db, capsys):
    user = User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    call_command("otp_enrol", "ops", "--name", "ops phone")
    out = capsys.readouterr().out
    assert "otpauth://totp/Balance%3Aops?secret=" in out and "issuer=Balance" in out
    assert "█" in out or "▀" in out  # the QR code
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.name == "ops phone"
    client = Client()
    assert post_login(client, "ops", PASSWORD, token(user)).status_code == 302 and logged_in(client)


def test_otp_enrol_refuses_unknown_non_staff_and_a_second_device_without_replace(db):
    User.objects.create_user("player", password=PASSWORD)
    staff = User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    with pytest.raises(CommandError, match="no user"):
        call_command("otp_enrol", "nobody")
    with pytest.raises(CommandError, match="not staff"):
        call_command("otp_enrol", "player")
    call_command("otp_enrol", "ops", "--no-qr")
    first = TOTPDevice.objects.get(user=staff)
    with pytest.raises(CommandError, match="--replace"):
        call_command("otp_enrol", "ops", "--no-qr")
    call_command("otp_enrol", "ops", "--no-qr", "--replace")
    assert list(TOTPDevice.objects.filter(user=staff).values_list("pk", flat=True)) != [first.pk]
    assert TOTPDevice.objects.filter(user=staff).count() == 1


# --- the admin's own port ---------------------------------------------------------------------------
@pytest.fixture
def api_urls_without_admin(settings):
    import balance_project.urls

    settings.ADMIN_ON_API_PORT = False
    importlib.reload(balance_project.urls)
    clear_url_caches()
    yield
    settings.ADMIN_ON_API_PORT = True
    importlib.reload(balance_project.urls)
    clear_url_caches()


def test_the_api_port_does_not_serve_the_admin_when_configured_so(api_urls_without_admin, admin):
    for url in ("/admin/", "/admin/login/", "/admin/accounts/account/"):
        assert admin.get(url).status_code == 404
    assert admin.get("/health").status_code == 200


def test_the_admin_port_serves_the_admin_and_not_the_api(settings, admin, wallet):
    settings.ROOT_URLCONF = "balance_project.urls_admin"
    alice = wallet("alice")
    raw, _ = api_key_create(client="cashier", scopes=["accounts:read"])
    assert admin.get("/admin/accounts/account/").status_code == 200
    assert admin.get(f"/api/v1/accounts/{alice}", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404
    assert admin.get("/metrics").status_code == 404


def test_runall_starts_the_admin_listener_when_admin_bind_is_set(settings):
    from balance_project.runall import service_children

    settings.ADMIN_BIND = ""
    assert "admin" not in [child.name for child in service_children()]
    settings.ADMIN_BIND = "127.0.0.1:3003"
    admin_child = {child.name: child for child in service_children()}["admin"]
    assert admin_child.argv[-1] == "balance_project.wsgi_admin:application"
    assert admin_child.argv[admin_child.argv.index("--bind") + 1] == "127.0.0.1:3003"


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'balance_project.settings'); "
        "from django.conf import settings; "
        "print(settings.ADMIN_OTP_REQUIRED, settings.ADMIN_ON_API_PORT, settings.ROOT_URLCONF)"
    )
    keys = {"DJANGO_SECRET_KEY": "s" * 40 + "-admin-test-secret", "LEDGER_HMAC_KEY": "h" * 40 + "-admin-test-hmac"}
    clean = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ADMIN_OTP_REQUIRED", "ADMIN_ON_API_PORT")
    }
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **keys, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_requires_the_second_factor_and_keeps_the_admin_off_the_api_port():
    secure = _settings_in_a_fresh_process(DJANGO_SECURE="1")
    assert secure.returncode == 0, secure.stderr
    assert secure.stdout.split() == ["True", "False", "balance_project.urls"]
    refused = _settings_in_a_fresh_process(DJANGO_SECURE="1", ADMIN_OTP_REQUIRED="0")
    assert refused.returncode != 0 and "ADMIN_OTP_REQUIRED=0 is refused" in refused.stderr
    embedded = _settings_in_a_fresh_process()
    assert embedded.stdout.split() == ["True", "True", "balance_project.urls"]
    admin_port = _settings_in_a_fresh_process(BALANCE_HTTP_SERVES="admin")
    assert admin_port.stdout.split()[-1] == "balance_project.urls_admin"
