"""Probes, the OpenAPI contract and the API key command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from accounts.keys import SCOPES
from accounts.models import ApiKey
from balance_project import health
from tests.api.conftest import Api, assert_refused


@pytest.fixture(autouse=True)
def _readiness_checked_anew():
    """/ready keeps a result half a second: each test here changes what it should find."""
    health.ready_results_forget()
    yield
    health.ready_results_forget()


def test_health_is_ok_without_touching_the_database():
    # No django_db mark: any database access here raises in pytest-django.
    response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_database_migrations_and_redis_answer(settings, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    response = Client().get("/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checks"]["database"] == {"status": "ok", "vendor": connection.vendor}
    assert body["checks"]["migrations"] == {"status": "ok"}
    assert body["checks"]["redis"] == ({"status": "ok"} if settings.REDIS_URL else {"status": "disabled"})
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_ready_reports_redis_down_as_degraded(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2, "IGNORE_EXCEPTIONS": True},
        }
    }
    response = Client().get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "degraded"


@pytest.mark.django_db(transaction=True)
def test_ready_is_503_while_a_migration_is_unapplied(monkeypatch):
    # Committed: /ready checks on a connection of its own (a probe thread), which sees only that.
    monkeypatch.setattr(health, "_migrations_applied", False)
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied("ledger", "0001_initial")
    try:
        response = Client().get("/ready")
    finally:
        recorder.record_applied("ledger", "0001_initial")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"]["status"] == "pending"
    assert "ledger.0001_initial" in body["checks"]["migrations"]["unapplied"]


@pytest.mark.django_db
def test_metrics_are_served_without_a_key():
    response = Client().get("/metrics")
    assert response.status_code == 200 and b"django_http_requests" in response.content


@pytest.mark.django_db
def test_schema_and_docs_are_public():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    deposit = document["paths"]["/api/v1/accounts/{account_id}/deposit"]["post"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= deposit["parameters"][0].items() or any(
        p["name"] == "Idempotency-Key" and p["required"] for p in deposit["parameters"]
    )
    assert deposit["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    amount = document["components"]["schemas"]["MovementInput"]["properties"]["amount"]
    assert {option["type"] for option in amount["oneOf"]} == {"integer", "string"}
    assert "BearerApiKey" in document["components"]["securitySchemes"]
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/transfers" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.django_db
def test_create_api_key_prints_a_working_key_once(opened):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_key", "--client", "cashier-cli", "--scopes", "accounts:read,payments:write", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    record = ApiKey.objects.get(client="cashier-cli")
    assert raw.startswith("bal_") and raw not in (record.key_hash, str(record.scopes))
    assert record.scopes == ["accounts:read", "payments:write"]
    account_id = opened()
    api = Api(raw)
    assert api.get(f"/api/v1/accounts/{account_id}").status_code == 200
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5}).status_code == 201
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/freeze"), 403, "permission_denied")


@pytest.mark.django_db
def test_create_api_key_with_all_scopes():
    out = io.StringIO()
    call_command("create_api_key", "--client", "ops", "--all-scopes", stdout=out, stderr=io.StringIO())
    assert ApiKey.objects.get(client="ops").scopes == sorted(SCOPES)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--client", "x", "--scopes", "accounts:read,money:print"],
        ["--client", "x", "--scopes", " , "],
        ["--client", "", "--all-scopes"],
    ],
)
def test_create_api_key_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiKey.objects.exists()
