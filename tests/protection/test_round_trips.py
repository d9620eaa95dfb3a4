"""The limits cost no round trip: with limits and an exclusion row in place, a deposit, a
reservation and a buy-in keep tests/perf/test_hot_path.py's budgets (BEGIN with the reads, the
writes with COMMIT)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import account_deposit
from reservations.services import reservation_reserve
from tables.services import table_buy_in
from tests.perf.test_hot_path import ROUND_TRIPS
from tests.protection.conftest import exclude, set_limit
from tests.tables.helpers import new_key, new_player, open_table

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def round_trips(call, **kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        call(idempotency_key=new_key(), **kwargs)
    return len(queries)


def test_limited_calls_keep_their_budget():
    user, wallet = new_player(funded=10_000)
    table = open_table()
    table_buy_in(client="p", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)  # seat opened
    for period in ("24h", "7d", "30d"):
        set_limit(user, "deposit", period, 1_000_000)
        set_limit(user, "loss", period, 1_000_000)
    set_limit(user, "buy_in", None, 1_000_000)
    other, _ = new_player()
    exclude(other)  # a row in the exclusions table that is not this player's
    assert round_trips(account_deposit, client="c", account_id=wallet, amount=10) == ROUND_TRIPS["deposit"]
    assert round_trips(table_buy_in, client="p", user_id=user, table_id=table, amount=10) == ROUND_TRIPS["buy_in"]
    reserve = round_trips(reservation_reserve, client="p", user_id=user, table_id=table, amount=10)
    assert reserve == ROUND_TRIPS["reserve"]
