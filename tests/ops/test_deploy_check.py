"""`manage.py check --deploy` passes with the production environment documented in docs/operations.md."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.views.debug import ExceptionReporter

from balance_project.secrecy import EMBEDDED_LEDGER_HMAC_KEY, EMBEDDED_SECRET_KEY

BASE_DIR = Path(__file__).resolve().parents[2]


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),  # 64 characters
        DJANGO_DEBUG="0",
        DJANGO_SECURE="1",
        DJANGO_ALLOWED_HOSTS="balance.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://balance.example.com",
        DATABASE_URL="postgres://balance@db.invalid:5432/balance",
        REDIS_URL="redis://cache.invalid:6379/0",
        CELERY_BROKER_URL="redis://cache.invalid:6379/1",
        LEDGER_HMAC_KEY=secrets.token_urlsafe(48),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = check_deploy(production_env(BALANCE_VAR_DIR=str(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def embedded_env() -> dict[str, str]:
    """This process's environment as the embedded default: no DJANGO_ settings, no servers (a
    PostgreSQL run sets DATABASE_URL, which would make it production)."""
    servers = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in servers}


def test_check_deploy_fails_on_the_embedded_default(tmp_path):
    env = embedded_env()
    result = check_deploy({**env, "BALANCE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS without DJANGO_SECURE


@pytest.mark.parametrize("secure", ["1", "0"])
@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DJANGO_SECRET_KEY", None, "DJANGO_SECRET_KEY must be set"),
        ("LEDGER_HMAC_KEY", None, "LEDGER_HMAC_KEY must be set"),
        ("DJANGO_SECRET_KEY", EMBEDDED_SECRET_KEY, "DJANGO_SECRET_KEY is a public placeholder"),
        ("LEDGER_HMAC_KEY", EMBEDDED_LEDGER_HMAC_KEY, "LEDGER_HMAC_KEY is a public placeholder"),
        ("LEDGER_HMAC_KEY", "compose-local-only-ledger-key-change-me", "LEDGER_HMAC_KEY is a public placeholder"),
        ("LEDGER_HMAC_KEY", "k", "LEDGER_HMAC_KEY must be at least 32 bytes"),
        ("DJANGO_SECRET_KEY", "x" * 31, "DJANGO_SECRET_KEY must be at least 32 bytes"),
    ],
)
def test_production_refuses_public_missing_or_short_keys(tmp_path, secure, name, value, says):
    """DJANGO_SECURE=1, or a configured database without it: either way the service will not start
    (every manage.py command, gunicorn and the sidecar load these settings)."""
    result = check_deploy(production_env(BALANCE_VAR_DIR=str(tmp_path), DJANGO_SECURE=secure, **{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert says in result.stderr


def test_a_configured_database_is_production_even_without_the_secure_flag(tmp_path):
    env = production_env(
        BALANCE_VAR_DIR=str(tmp_path), DJANGO_SECURE=None, LEDGER_HMAC_KEY=None, DJANGO_SECRET_KEY=None
    )
    result = check_deploy(env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set; LEDGER_HMAC_KEY must be set" in result.stderr


def test_check_deploy_names_the_public_keys_of_the_embedded_default(tmp_path):
    env = {k: v for k, v in embedded_env().items() if k != "LEDGER_HMAC_KEY"}
    result = check_deploy({**env, "BALANCE_VAR_DIR": str(tmp_path)})
    assert "(balance.W001) DJANGO_SECRET_KEY must be set" in result.stderr
    assert "(balance.W001) LEDGER_HMAC_KEY must be set" in result.stderr


def _debug_page(rf) -> str:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return ExceptionReporter(rf.get("/"), *sys.exc_info()).get_traceback_html()


def test_a_debug_error_page_hides_connection_urls_and_keys(rf):
    # The password lives only in settings: the page shows the frames' locals too.
    hidden = {"DATABASE_URL": "postgres://balance:{}@db.invalid/b", "REDIS_URL": "redis://:{}@cache.invalid/0"}
    with override_settings(
        DEBUG=True, **{name: url.format("pw-" + secrets.token_hex(8)) for name, url in hidden.items()}
    ):
        html = _debug_page(rf)
        passwords = [urllib.parse.urlsplit(getattr(settings, name)).password for name in hidden]
    assert "DATABASE_URL" in html  # the setting is listed, its value is not
    for password in passwords:
        assert password and password not in html
    assert settings.LEDGER_HMAC_KEY not in html
