"""Helpers of the hot-call tests: calls with fresh keys, scenario tokens, and a snapshot of
what a refused call could have touched."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger.models import Transaction
from reservations.models import Reservation, ReservationEvent
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tables.models import Hand, Seat, Table
from tables.services import hand_settle, seat_cash_out, table_buy_in
from tests.tables.helpers import new_key, new_player, open_table

CLIENT = "poker"


# --- calls, each with a fresh idempotency key ---------------------------------------------------


def reserve(table, user, amount, **kwargs):
    return reservation_reserve(
        client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table, amount=amount, **kwargs
    )


def commit(reservation, amount=None):
    """``amount``, or everything held (``all: true``) when none is named."""
    return reservation_commit(
        client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, amount=amount, whole=amount is None
    )


def release(reservation, reason=""):
    return reservation_release(client=CLIENT, idempotency_key=new_key(), reservation_id=reservation, reason=reason)


def buy_in(table, user, amount):
    return table_buy_in(client=CLIENT, idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)


def settle(table, hand_id, contributions, payouts, rake, key=None):
    return hand_settle(
        client=CLIENT,
        idempotency_key=key or new_key(),
        table_id=table,
        hand_id=hand_id,
        contributions=contributions,
        payouts=payouts,
        rake=rake,
    )


def cash_out(table, user, **kwargs):
    """Every chip unless an amount (or leave) is named, as ``all: true`` asks."""
    if "amount" not in kwargs and not kwargs.get("leave"):
        kwargs.setdefault("whole", True)
    return seat_cash_out(client=CLIENT, idempotency_key=new_key(), table_id=table, user_id=user, **kwargs)


def world():
    """Everything a refused call could have touched (a stricter money_snapshot)."""
    return (
        list(
            Account.objects.order_by("pk").values_list(
                "pk", "balance", "held", "status", "version", "entry_seq", "chain_head"
            )
        ),
        Transaction.objects.count(),
        Hand.objects.count(),
        ReservationEvent.objects.count(),
        list(Reservation.objects.order_by("pk").values_list("pk", "status", "committed_amount")),
        list(Seat.objects.order_by("pk").values_list("pk", "status")),
        list(Table.objects.order_by("pk").values_list("pk", "chips", "status")),
    )


def refusal(code, call, *args, **kwargs):
    """``call``'s refusal ``code`` as {"code", "message", "details"}, once checked that it moved nothing."""
    before = world()
    with pytest.raises(ApplicationError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    assert world() == before, f"the refused call ({err.value!r}) changed something"
    return err.value.as_dict()


# --- a scenario's ids ---------------------------------------------------------------------------


class Run:
    """One run of a scenario: every table and user id carries the run's token."""

    def __init__(self):
        self.token = f"hp{uuid.uuid4().hex[:10]}"

    def table(self, name="t", currency="EUR"):
        return open_table(currency, table_id=f"{self.token}-{name}")

    def player(self, name, funded=1000, currency="EUR"):
        return new_player(funded=funded, currency=currency, user_id=f"{self.token}-{name}")
