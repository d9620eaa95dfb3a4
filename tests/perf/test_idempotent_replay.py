"""A repeated key is answered from its stored record when the cache has forgotten it: the record
is inserted with the effect, without a lookup first (the round trips per call are pinned in
test_hot_path.py)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from accounts.models import Account
from ledger.models import JournalRecord, Transaction
from tables.services import table_buy_in, table_open

pytestmark = pytest.mark.django_db


@pytest.fixture
def table(wallet, key):
    table_id = f"perf-{uuid.uuid4().hex[:8]}"
    table_open(client="tests", idempotency_key=key("open"), table_id=table_id, currency="EUR")
    players = []
    for _ in range(2):
        user = f"u-{uuid.uuid4().hex[:8]}"
        wallet(user, funded=100_000)
        players.append(user)
    return table_id, players


def test_a_repeated_key_without_the_cache_replays_the_stored_answer_and_moves_nothing(table, key):
    """The record is inserted without a lookup first: a repeat runs, is refused by the unique key,
    rolls back whole and answers with the first answer."""
    table_id, (a, _) = table
    buy_key = key("buy")
    first = table_buy_in(client="tests", idempotency_key=buy_key, user_id=a, table_id=table_id, amount=1_000)
    transactions = Transaction.objects.count()
    cache.clear()
    again = table_buy_in(client="tests", idempotency_key=buy_key, user_id=a, table_id=table_id, amount=1_000)
    assert again == first
    assert Transaction.objects.count() == transactions
    assert Account.objects.get(kind="user", owner_ref=a).balance == 100_000 - 1_000
    assert JournalRecord.objects.filter(key=buy_key).count() == 1


def test_a_refusal_is_stored_and_replayed_without_the_cache(table, key):
    table_id, (a, _) = table
    buy_key = key("buy")
    with pytest.raises(Exception) as first:
        table_buy_in(client="tests", idempotency_key=buy_key, user_id=a, table_id=table_id, amount=10**9)
    cache.clear()
    table_buy_in(client="tests", idempotency_key=key("buy"), user_id=a, table_id=table_id, amount=1_000)
    with pytest.raises(Exception) as again:
        table_buy_in(client="tests", idempotency_key=buy_key, user_id=a, table_id=table_id, amount=10**9)
    assert first.value.code == again.value.code == "insufficient_funds"
    assert JournalRecord.objects.get(key=buy_key).is_error is True
