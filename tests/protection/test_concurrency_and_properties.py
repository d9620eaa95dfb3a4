"""Limits under concurrency (real threads, one connection each) and under random sequences of
deposits, buy-ins, reservations, cash-outs and a moving clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account
from accounts.services import account_deposit
from balance_project.errors import ApplicationError
from ledger.models import Entry
from reservations.services import reservation_commit, reservation_reserve
from tables.services import seat_cash_out, table_buy_in
from tests.concurrency.conftest import run_concurrently
from tests.protection.conftest import set_limit
from tests.tables.helpers import new_key, new_player, open_table

LIMITED = {
    "deposit_limit_exceeded",
    "loss_limit_exceeded",
    "buy_in_limit_exceeded",
    "insufficient_funds",
    "insufficient_chips",
    "player_not_seated",
}


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_deposits_land_exactly_up_to_the_limit():
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 2000)

    def deposit():
        return account_deposit(client="cashier", idempotency_key=f"d-{uuid.uuid4().hex}", account_id=wallet, amount=100)

    outcomes = run_concurrently([deposit for _ in range(50)], threads=25)
    accepted = [o for status, o in outcomes if status == "ok"]
    refused = [o.code for status, o in outcomes if status == "error"]
    assert len(accepted) == 20 and refused == ["deposit_limit_exceeded"] * 30
    assert Account.objects.get(pk=wallet).balance == 2000


@pytest.mark.django_db(transaction=True)
def test_concurrent_buy_ins_at_two_tables_stay_within_the_loss_limit():
    user, wallet = new_player(funded=100_000)
    tables = [open_table(), open_table()]
    set_limit(user, "loss", "24h", 1500)

    def buy_in(table):
        return lambda: table_buy_in(
            client="poker", idempotency_key=f"b-{uuid.uuid4().hex}", user_id=user, table_id=table, amount=100
        )

    outcomes = run_concurrently([buy_in(tables[n % 2]) for n in range(40)], threads=20)
    assert sum(status == "ok" for status, _ in outcomes) == 15
    assert {o.code for status, o in outcomes if status == "error"} == {"loss_limit_exceeded"}
    assert Account.objects.get(pk=wallet).balance == 100_000 - 1500


# --- the property ----------------------------------------------------------------------------

PERIOD = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
steps = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "buy_in", "reserve_commit", "cash_out", "wait"]),
        st.integers(min_value=1, max_value=700),
        st.integers(min_value=1, max_value=60),  # hours to wait
    ),
    min_size=1,
    max_size=25,
)


def worst_window(rows, period, sign):
    """The most any window (t - period, t] holds: rows are (moment, amount) oldest first; ``sign``
    turns an entry into what it adds to the limited figure. Any window's movements are a run of
    consecutive rows spanning less than the period."""
    worst = 0
    for start in range(len(rows)):
        total = 0
        for moment, amount in rows[start:]:
            if moment - rows[start][0] >= period:
                break
            total += sign * amount
            worst = max(worst, total)
    return worst


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=steps,
    deposit_day=st.integers(min_value=100, max_value=2000),
    deposit_week=st.integers(min_value=100, max_value=4000),
    loss_day=st.integers(min_value=100, max_value=1500),
    loss_week=st.integers(min_value=100, max_value=3000),
)
def test_no_sequence_deposits_or_loses_more_than_the_lowest_limit_in_any_window(
    monkeypatch, steps, deposit_day, deposit_week, loss_day, loss_week
):
    moment = [datetime(2030, 1, 1, tzinfo=UTC)]
    monkeypatch.setattr(timezone, "now", lambda: moment[0])
    with transaction.atomic():  # each example starts from nothing
        user, wallet = new_player(funded=50_000)  # funds never bind: the limits do
        table = open_table()
        moment[0] += timedelta(days=8)  # the funding is out of every window
        start = moment[0]
        set_limit(user, "deposit", "24h", deposit_day)
        set_limit(user, "deposit", "7d", deposit_week)
        set_limit(user, "loss", "24h", loss_day)
        set_limit(user, "loss", "7d", loss_week)
        for action, amount, hours in steps:
            try:
                if action == "deposit":
                    account_deposit(client="c", idempotency_key=new_key(), account_id=wallet, amount=amount)
                elif action == "buy_in":
                    table_buy_in(client="p", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)
                elif action == "reserve_commit":
                    held = reservation_reserve(
                        client="p", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount
                    )
                    moment[0] += timedelta(minutes=1)
                    reservation_commit(
                        client="p", idempotency_key=new_key(), reservation_id=held["reservation"]["id"], whole=True
                    )
                elif action == "cash_out":
                    seat_cash_out(client="p", idempotency_key=new_key(), table_id=table, user_id=user, amount=amount)
                else:
                    moment[0] += timedelta(hours=hours)
            except ApplicationError as refused:
                assert refused.code in LIMITED, refused
            moment[0] += timedelta(minutes=7)
        entries = list(
            Entry.objects.filter(account_id=wallet)
            .order_by("seq")
            .values_list("created_at", "amount", "transaction__kind")
        )
        entries = [(at, amount, kind) for at, amount, kind in entries if at >= start]
        deposits = [(at, amount) for at, amount, kind in entries if kind == "deposit"]
        play = [(at, amount) for at, amount, kind in entries if kind in ("buy_in", "cash_out")]
        # The lowest limit over each window: a day is within a week too.
        for period, lowest_deposit, lowest_loss in (
            ("24h", min(deposit_day, deposit_week), min(loss_day, loss_week)),
            ("7d", deposit_week, loss_week),
        ):
            assert worst_window(deposits, PERIOD[period], 1) <= lowest_deposit
            assert worst_window(play, PERIOD[period], -1) <= lowest_loss
        transaction.set_rollback(True)
