"""The guards of ledger.services that no service call reaches today: a caller's programming error
(bad legs, a hold below zero) is a ValueError or RuntimeError before anything is queued, and a
balance past int64 is refused like any other amount."""

import pytest

from accounts.services import account_deposit
from balance_project.errors import ApplicationError
from balance_project.money import INT64_MAX
from ledger.rows import AccountRow
from ledger.services import Leg, _check_legs, holds_change
from tests.tables.helpers import account, books_problems, new_key, new_player


def wallet_row(*, balance: int = 100, held: int = 0) -> AccountRow:
    return AccountRow(1, "user", "alice", "", 0, "EUR", balance, held, False, "active", 1, 0, "")


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([Leg(1, 5)], "at least two legs"),
        ([Leg(1, 0), Leg(2, 0)], "non-zero integers"),
        ([Leg(1, True), Leg(2, -1)], "non-zero integers"),
        ([Leg(1, 2.5), Leg(2, -2.5)], "non-zero integers"),
        ([Leg(1, 5), Leg(1, -5)], "appears twice"),
    ],
)
def test_malformed_legs_are_a_programming_error(legs, message):
    with pytest.raises(ValueError, match=message):
        _check_legs(legs)


def test_legs_that_do_not_sum_to_zero_are_unbalanced():
    with pytest.raises(ApplicationError) as refused:
        _check_legs([Leg(1, 5), Leg(2, -4)])
    assert (refused.value.code, refused.value.details) == ("unbalanced_transaction", {"sum": 1})


def test_a_hold_cannot_be_dropped_below_zero():
    row = wallet_row(held=30)
    with pytest.raises(RuntimeError, match="below zero"):
        holds_change(None, accounts={1: row}, hold_deltas={1: -31})  # refused before the work is used
    assert row.held == 30


@pytest.mark.django_db
def test_a_balance_past_int64_is_refused_and_changes_nothing(settings):
    settings.MAX_AMOUNT = INT64_MAX  # one call may then move it all; the balance bound still holds
    _, wallet = new_player(funded=INT64_MAX)
    with pytest.raises(ApplicationError) as refused:
        account_deposit(client="tests", idempotency_key=new_key(), account_id=wallet, amount=1)
    assert refused.value.code == "invalid_amount" and "cannot hold that much" in refused.value.message
    assert account(wallet).balance == INT64_MAX
    assert books_problems() == []
