"""Shared fixtures. Tests run on whatever DATABASE_URL / REDIS_URL select (SQLite alone by default)."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

_counter = itertools.count(1)


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL")
    # A test that starts its own processes on a fresh embedded default runs the same whatever the
    # suite runs on: the SQLite run covers it, and a second run on PostgreSQL would only repeat it.
    skip_embedded = pytest.mark.skip(
        reason="runs on the embedded default whatever DATABASE_URL says: see the SQLite run"
    )
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "embedded_default" in item.keywords and on_postgres:
            item.add_marker(skip_embedded)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _seal_sink_of_this_test(settings, tmp_path):
    """Each test's database starts empty, so its seals go to a sink of its own (a sink holding
    another database's seals would rightly stop the sealer)."""
    settings.LEDGER_SEAL_SINK = f"file://{tmp_path / 'ledger-seals.jsonl'}"


@pytest.fixture(autouse=True)
def _no_database_outage_left():
    """A test that made PostgreSQL look down (balance_project/outage.py) must not leave the next one
    refusing writes; the outage's probe would end it within a fraction of a second anyway."""
    from balance_project import outage

    outage.reset_for_tests()
    yield
    outage.reset_for_tests()


@pytest.fixture(autouse=True)
def _player_transfers_on(settings):
    """Transfers are off by default (settings.PLAYER_TRANSFERS_ENABLED); the tests of transfers
    predate the switch and run with it on. tests/protection turns it off where it tests that."""
    settings.PLAYER_TRANSFERS_ENABLED = True


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def key():
    """A fresh idempotency key each call."""
    return lambda prefix="k": f"{prefix}-{uuid.uuid4().hex}"


@pytest.fixture
def wallet(key):
    """Open a user wallet, optionally funded: ``wallet(owner, currency="EUR", funded=0)`` -> id."""
    from accounts.services import account_deposit, account_open

    def make(owner: str | None = None, currency: str = "EUR", funded: int = 0) -> int:
        owner = owner or f"user-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        opened = account_open(client="tests", idempotency_key=key("open"), owner_ref=owner, currency=currency)
        account_id = opened["account"]["id"]
        if funded:
            account_deposit(client="tests", idempotency_key=key("dep"), account_id=account_id, amount=funded)
        return account_id

    return make
