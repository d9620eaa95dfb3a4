"""Upper bounds on the database queries of each hot call on the ORM path (BEGIN and COMMIT included).

Not timed: a count of round trips, which is what made these calls slow (22 to 36 queries each
before). A change that adds a lookup to the hot path fails here and has to say why in the bound.
The ORM path serves SQLite and, with BALANCE_PG_HOT_PATH=0, PostgreSQL: these bounds hold it on
both. The PL/pgSQL path's own counts are in test_hot_path.py.
"""
from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from accounts.models import Account
from ledger.models import IdempotencyRecord, Transaction
from reservations.services import reservation_commit, reservation_reserve
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_open

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _orm_path(settings):
    settings.PG_HOT_PATH = False

BUY_IN_MAX = 19      # opening the seat included (2 inserts)
SETTLE_MAX = 15
CASH_OUT_MAX = 14
RESERVE_MAX = 9
COMMIT_MAX = 17      # opening the seat included (2 inserts)


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


def _buy_in(table_id, user, key, amount=1_000):
    return table_buy_in(client="tests", idempotency_key=key("buy"), user_id=user, table_id=table_id, amount=amount)


def _settle(table_id, players, key, hand_id):
    a, b = players
    return hand_settle(client="tests", idempotency_key=key("hand"), table_id=table_id, hand_id=hand_id,
                       contributions={a: 50, b: 50}, payouts={a: 95}, rake=5)


def test_buy_in_query_count(table, key, django_assert_max_num_queries):
    table_id, (a, _) = table
    with django_assert_max_num_queries(BUY_IN_MAX):
        answer = _buy_in(table_id, a, key)
    assert answer["seat"]["chips"] == 1_000 and answer["reservation"]["status"] == "committed"


def test_settle_query_count(table, key, django_assert_max_num_queries):
    table_id, players = table
    for user in players:
        _buy_in(table_id, user, key)
    _settle(table_id, players, key, "warm-up")  # the first rake in a currency creates the rake account
    with django_assert_max_num_queries(SETTLE_MAX):
        answer = _settle(table_id, players, key, "h1")
    assert answer["table"]["chips"] == 2_000 - 10
    assert sorted(e["amount"] for e in answer["transaction"]["entries"]) == [-50, 5, 45]


def test_cash_out_query_count(table, key, django_assert_max_num_queries):
    table_id, (a, _) = table
    _buy_in(table_id, a, key)
    with django_assert_max_num_queries(CASH_OUT_MAX):
        answer = seat_cash_out(client="tests", idempotency_key=key("out"), table_id=table_id, user_id=a, leave=True)
    assert (answer["seat"]["status"], answer["seat"]["chips"]) == ("left", 0)
    assert answer["account"]["balance"] == 100_000 and answer["account"]["available"] == 100_000


def test_reserve_and_commit_query_counts(table, key, django_assert_max_num_queries):
    table_id, (a, _) = table
    with django_assert_max_num_queries(RESERVE_MAX):
        reserved = reservation_reserve(client="tests", idempotency_key=key("res"), user_id=a, table_id=table_id,
                                       amount=700)
    with django_assert_max_num_queries(COMMIT_MAX):
        committed = reservation_commit(client="tests", idempotency_key=key("com"),
                                       reservation_id=reserved["reservation"]["id"])
    assert committed["seat"]["chips"] == 700 and committed["transaction"]["entries"][0]["amount"] in (-700, 700)


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
    assert IdempotencyRecord.objects.filter(key=buy_key).count() == 1


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
    assert IdempotencyRecord.objects.get(key=buy_key).is_error is True
