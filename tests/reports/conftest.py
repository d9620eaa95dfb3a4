"""A known set of postings at known moments, for the exact export and trial balance tests."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

import pytest


@contextmanager
def clock(moment: datetime):
    """Make the posting services stamp ``moment`` (transaction and entry created times)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def postings(wallet, key, settings):
    """Five transactions around the period [2026-11-01, 2026-12-01): ids of accounts and transactions.

    A deposit just before the start, one exactly at the start (inside), a transfer with metadata and a
    USD deposit inside, and a withdrawal exactly at the end (outside). One external-funds account
    per currency (tests/reports/test_trial_balance.py sums the shards).
    """
    settings.EXTERNAL_ACCOUNT_SHARDS = 1
    from accounts.models import Account
    from accounts.services import account_deposit, account_transfer, account_withdraw

    alice, bob, carol = wallet("alice"), wallet("bob"), wallet("carol", currency="USD")
    with clock(utc(2026, 10, 31, 23, 59, 59, 999999)):
        before = account_deposit(client="cashier", idempotency_key=key(), account_id=alice, amount=1000)
    with clock(utc(2026, 11, 1)):
        at_start = account_deposit(client="cashier", idempotency_key=key(), account_id=bob, amount=500)
    with clock(utc(2026, 11, 15, 12, 30, 1, 250)):
        transfer = account_transfer(
            client="cashier",
            idempotency_key=key(),
            from_account_id=alice,
            to_account_id=bob,
            amount=250,
            metadata={"note": 'rent, "split"', "n": 2},
        )
    with clock(utc(2026, 11, 20)):
        usd = account_deposit(client="cashier", idempotency_key=key(), account_id=carol, amount=700)
    with clock(utc(2026, 12, 1)):
        at_end = account_withdraw(client="cashier", idempotency_key=key(), account_id=bob, amount=100)
    external = {a.currency: a.pk for a in Account.objects.filter(kind="system", system_code="external")}
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "ext_eur": external["EUR"],
        "ext_usd": external["USD"],
        "before": before["transaction"]["id"],
        "at_start": at_start["transaction"]["id"],
        "transfer": transfer["transaction"]["id"],
        "usd": usd["transaction"]["id"],
        "at_end": at_end["transaction"]["id"],
    }
