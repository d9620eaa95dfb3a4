"""`manage.py check --deploy` passes with the production environment documented in docs/operations.md."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

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


def test_check_deploy_fails_on_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = check_deploy({**env, "BALANCE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS without DJANGO_SECURE


def test_secure_mode_refuses_the_public_default_keys(tmp_path):
    for missing in ("DJANGO_SECRET_KEY", "LEDGER_HMAC_KEY"):
        env = production_env(BALANCE_VAR_DIR=str(tmp_path))
        env.pop(missing)
        result = check_deploy(env)
        assert result.returncode != 0
        assert f"{missing} must be set when DJANGO_SECURE=1" in result.stderr
