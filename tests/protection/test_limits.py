"""Deposit, loss and buy-in limits at their boundaries, with a controlled clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import PlayerLimit, ProtectionEvent
from accounts.services import account_deposit, account_withdraw
from balance_project.errors import ApplicationError
from ledger.chain import format_timestamp
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tables.services import seat_cash_out, table_buy_in
from tests.protection.conftest import set_limit
from tests.tables.helpers import money_snapshot, new_key, new_player, open_table, seat_chips

pytestmark = pytest.mark.django_db


def deposit(wallet, amount, key=None):
    return account_deposit(client="cashier", idempotency_key=key or new_key("dep"), account_id=wallet, amount=amount)


def buy_in(user, table, amount):
    return table_buy_in(client="poker", idempotency_key=new_key("buy"), user_id=user, table_id=table, amount=amount)


def cash_out(user, table, amount=None):
    return seat_cash_out(
        client="poker",
        idempotency_key=new_key("out"),
        table_id=table,
        user_id=user,
        amount=amount,
        whole=amount is None,
    )


def refusal(call, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- deposits --------------------------------------------------------------------------------


def test_a_deposit_exactly_at_the_limit_passes_and_one_unit_over_is_refused_with_its_details(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 1000)
    deposit(wallet, 600)
    before = money_snapshot()
    error = refusal(deposit, wallet, 401)
    assert error.code == "deposit_limit_exceeded"
    assert error.details == {
        "window": "24h",
        "limit": 1000,
        "used": 600,
        "allowance": 400,
        "requested": 401,
        "resets_at": format_timestamp(clock.now + __import__("datetime").timedelta(hours=24)),
    }
    assert money_snapshot() == before
    deposit(wallet, 400)
    assert refusal(deposit, wallet, 1).details["allowance"] == 0


def test_the_refusal_is_stored_with_its_key(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 100)
    assert refusal(deposit, wallet, 101, key="same").code == "deposit_limit_exceeded"
    set_limit(user, "deposit", "24h", 50)
    set_limit(user, "deposit", "24h", 50)  # still refused the same way: the key answers
    assert refusal(deposit, wallet, 101, key="same").code == "deposit_limit_exceeded"


def test_the_lowest_window_applies(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 1000)
    set_limit(user, "deposit", "7d", 500)
    set_limit(user, "deposit", "30d", 700)
    error = refusal(deposit, wallet, 501)
    assert (error.details["window"], error.details["allowance"]) == ("7d", 500)
    deposit(wallet, 500)


def test_a_deposit_exactly_one_period_old_no_longer_counts(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 1000)
    deposit(wallet, 1000)
    clock.advance(hours=24, seconds=-1)
    assert refusal(deposit, wallet, 1).code == "deposit_limit_exceeded"
    clock.advance(seconds=1)
    deposit(wallet, 1000)


def test_the_longer_windows_keep_counting_what_the_day_forgot(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 1000)
    set_limit(user, "deposit", "30d", 1500)
    deposit(wallet, 1000)
    clock.advance(days=2)
    error = refusal(deposit, wallet, 501)
    assert (error.details["window"], error.details["allowance"]) == ("30d", 500)
    clock.advance(days=28)  # the first deposit is now exactly 30 days old
    deposit(wallet, 1000)


def test_limits_are_per_currency(clock):
    user, eur = new_player()
    from accounts.services import account_open

    usd = account_open(client="tests", idempotency_key=new_key(), owner_ref=user, currency="USD")["account"]["id"]
    set_limit(user, "deposit", "24h", 100, currency="EUR")
    deposit(usd, 5000)
    assert refusal(deposit, eur, 101).code == "deposit_limit_exceeded"


def test_withdrawals_and_adjustments_do_not_count_and_are_never_limited(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 100)
    deposit(wallet, 100)
    account_withdraw(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=100)
    assert refusal(deposit, wallet, 1).details["used"] == 100


# --- changing a limit ------------------------------------------------------------------------


def test_a_decrease_applies_at_once_an_increase_after_the_cooling_off(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 1000)
    lowered = set_limit(user, "deposit", "24h", 300)
    assert (lowered["value"], lowered["pending_value"]) == (300, None)
    assert refusal(deposit, wallet, 301).code == "deposit_limit_exceeded"
    raised = set_limit(user, "deposit", "24h", 2000)
    assert (raised["value"], raised["pending_value"]) == (300, 2000)
    assert raised["pending_effective_at"] == format_timestamp(clock.now + __import__("datetime").timedelta(hours=24))
    clock.advance(hours=24, seconds=-1)
    assert refusal(deposit, wallet, 301).details["limit"] == 300
    clock.advance(seconds=1)
    deposit(wallet, 2000)


def test_a_lower_value_cancels_a_pending_increase(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 100)
    set_limit(user, "deposit", "24h", 5000)
    assert set_limit(user, "deposit", "24h", 100)["pending_value"] is None
    clock.advance(days=2)
    assert refusal(deposit, wallet, 101).details["limit"] == 100
    actions = list(ProtectionEvent.objects.filter(owner_ref=user).order_by("id").values_list("action", flat=True))
    assert actions == ["limit_set", "limit_increase_pending", "limit_pending_cancelled"]


def test_a_removal_waits_for_the_cooling_off_too(clock):
    user, wallet = new_player()
    set_limit(user, "deposit", "24h", 100)
    removing = set_limit(user, "deposit", "24h", None)
    assert removing["pending_removal"] is True and removing["value"] == 100
    assert refusal(deposit, wallet, 101).code == "deposit_limit_exceeded"
    clock.advance(hours=24)
    deposit(wallet, 10_000)
    set_limit(user, "deposit", "24h", None)  # the row goes once the removal is in force
    assert not PlayerLimit.objects.filter(owner_ref=user).exists()


@pytest.mark.parametrize(
    ("kind", "period", "value", "field"),
    [
        ("deposit", "1h", 100, "period"),
        ("deposit", None, 100, "period"),
        ("buy_in", "24h", 100, "period"),
        ("wager", "24h", 100, "kind"),
        ("loss", "7d", 0, "value"),
        ("loss", "7d", -5, "value"),
        ("loss", "7d", 1.5, "value"),
    ],
)
def test_bad_limits_are_invalid_and_change_nothing(kind, period, value, field):
    user, _ = new_player()
    error = refusal(set_limit, user, kind, period, value)
    assert error.code in ("invalid_request", "invalid_amount")
    assert error.details.get("field") == field
    assert not PlayerLimit.objects.filter(owner_ref=user).exists()


# --- losses and buy-ins ----------------------------------------------------------------------


def test_a_buy_in_exactly_at_the_loss_limit_passes_and_one_unit_over_is_refused(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "24h", 1000)
    buy_in(user, table, 700)
    error = refusal(buy_in, user, table, 301)
    assert (error.code, error.details["allowance"], error.details["window"]) == ("loss_limit_exceeded", 300, "24h")
    buy_in(user, table, 300)
    assert seat_chips(table, user) == 1000


def test_a_cash_out_gives_the_allowance_back(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "24h", 1000)
    buy_in(user, table, 1000)
    cash_out(user, table, 400)
    buy_in(user, table, 400)
    assert refusal(buy_in, user, table, 1).code == "loss_limit_exceeded"


def test_winnings_that_leave_the_window_cannot_let_a_later_window_overshoot(clock):
    """A cash-out counts only against the buy-ins after it: the largest loss from any moment in the
    window to now is what is limited, not the window's net."""
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "24h", 100)
    buy_in(user, table, 100)
    clock.advance(hours=1)
    cash_out(user, table, 100)
    clock.advance(hours=1)
    buy_in(user, table, 100)  # since the cash-out: a loss of 100, at the limit
    assert refusal(buy_in, user, table, 1).code == "loss_limit_exceeded"


def test_a_loss_limit_resets_when_the_movement_starting_the_largest_loss_leaves_the_window(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "24h", 100)
    buy_in(user, table, 100)
    clock.advance(hours=1)
    cash_out(user, table, 100)
    clock.advance(hours=1)
    second = clock.now
    buy_in(user, table, 100)
    error = refusal(buy_in, user, table, 1)
    # The first buy-in leaving the window frees nothing: the loss since the second is still 100.
    assert error.details["resets_at"] == format_timestamp(second + timedelta(hours=24))
    clock.advance(hours=23)  # the first buy-in has left the window
    assert refusal(buy_in, user, table, 1).details["allowance"] == 0
    clock.advance(hours=1)
    buy_in(user, table, 100)


def test_pending_reservations_count_as_lost_until_they_end(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "24h", 1000)
    held = reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=800)
    error = refusal(
        reservation_reserve, client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=201
    )
    assert (error.code, error.details["allowance"]) == ("loss_limit_exceeded", 200)
    reservation_release(client="poker", idempotency_key=new_key(), reservation_id=held["reservation"]["id"])
    again = reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=1000)
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=again["reservation"]["id"], whole=True)
    assert refusal(buy_in, user, table, 1).code == "loss_limit_exceeded"


def test_a_loss_exactly_one_period_old_no_longer_counts(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "loss", "7d", 500)
    buy_in(user, table, 500)
    clock.advance(days=7, seconds=-1)
    assert refusal(buy_in, user, table, 1).details["resets_at"] == format_timestamp(
        clock.now + __import__("datetime").timedelta(seconds=1)
    )
    clock.advance(seconds=1)
    buy_in(user, table, 500)


def test_the_maximum_buy_in_refuses_one_unit_over(clock):
    user, _ = new_player(funded=10_000)
    table = open_table()
    set_limit(user, "buy_in", None, 500)
    buy_in(user, table, 500)
    error = refusal(buy_in, user, table, 501)
    assert (error.code, error.details["limit"], error.details["requested"]) == ("buy_in_limit_exceeded", 500, 501)
    error = refusal(
        reservation_reserve, client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=501
    )
    assert error.code == "buy_in_limit_exceeded"


def test_a_deposit_limit_does_not_touch_buy_ins_and_a_loss_limit_not_deposits(clock):
    user, wallet = new_player(funded=5000)
    table = open_table()
    set_limit(user, "deposit", "24h", 5000)
    set_limit(user, "loss", "24h", 10_000)
    buy_in(user, table, 5000)
    deposit_error = refusal(deposit, wallet, 1)
    assert deposit_error.code == "deposit_limit_exceeded"
