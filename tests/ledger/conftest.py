"""Helpers of the ledger tests: a small ledger built through the services, and raw-SQL tampering
that bypasses the ORM and (on PostgreSQL) the guard triggers, as a superuser could."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from accounts.models import Account
from accounts.services import account_transfer, account_withdraw
from ledger.models import Entry


@contextmanager
def triggers_bypassed():
    """A cursor whose writes skip the ledger triggers: on PostgreSQL as a superuser would
    (session_replication_role = replica, for this transaction only); SQLite has none."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's books are not committed yet: run their deferred checks now, on the honest
            # rows, as a real COMMIT would have before anyone tampered.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL session_replication_role = origin")


def balance_tampered(account_ids, balance: int) -> None:
    """Set the accounts' balance behind the ledger's back (the chain guard would refuse it at COMMIT)."""
    with triggers_bypassed() as cursor:
        for account_id in account_ids:
            cursor.execute("UPDATE accounts_account SET balance = %s WHERE id = %s", [balance, account_id])


def found(report_or_problems) -> set[tuple]:
    """(code, account_id, seq) of each problem."""
    problems = getattr(report_or_problems, "problems", report_or_problems)
    return {(p["code"], p["account_id"], p["seq"]) for p in problems}


def codes(report) -> set[str]:
    return {p["code"] for p in report.problems}


def entry(account_id: int, seq: int) -> Entry:
    return Entry.objects.get(account_id=account_id, seq=seq)


@pytest.fixture
def books(wallet, key, settings):
    """Two funded wallets with a history: A has 6 entries, B has 5.

    A: +1000 deposit, -100 -> B, -200 -> B, +50 <- B, -30 withdrawal, -70 -> B  => 650
    One external-funds account, so the books are three accounts whatever the wallets' ids.
    """
    settings.EXTERNAL_ACCOUNT_SHARDS = 1
    a, b = wallet(funded=1000), wallet(funded=500)
    account_transfer(client="t", idempotency_key=key(), from_account_id=a, to_account_id=b, amount=100)
    account_transfer(client="t", idempotency_key=key(), from_account_id=a, to_account_id=b, amount=200)
    account_transfer(client="t", idempotency_key=key(), from_account_id=b, to_account_id=a, amount=50)
    account_withdraw(client="t", idempotency_key=key(), account_id=a, amount=30)
    account_transfer(client="t", idempotency_key=key(), from_account_id=a, to_account_id=b, amount=70)
    assert Account.objects.get(pk=a).entry_seq == 6
    assert Account.objects.get(pk=a).balance == 650
    return {"a": a, "b": b}


# The tamper tests' ledger (tests/ledger/tampering.py), its seals in a sink of the test's own.
@pytest.fixture
def sink(settings, tmp_path):
    from tests.ledger.tampering import seal_sink_file

    return seal_sink_file(settings, tmp_path)


@pytest.fixture
def book(sink):
    from tests.ledger.tampering import build_ledger

    return build_ledger()
