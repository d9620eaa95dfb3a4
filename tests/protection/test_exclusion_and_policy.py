"""Self-exclusion and time-outs, and the operator's policy (transfers, maximum single deposit)."""

from __future__ import annotations

import pytest

from accounts.models import ProtectionEvent, SelfExclusion
from accounts.protection_services import player_protection_get
from accounts.services import account_deposit, account_open, account_transfer, account_withdraw
from ledger.chain import format_timestamp
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tests.protection.conftest import exclude
from tests.protection.test_limits import buy_in, cash_out, deposit, refusal
from tests.tables.helpers import money_snapshot, new_key, new_player, open_table, seat_chips

pytestmark = pytest.mark.django_db


def reserve(user, table, amount):
    return reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount)


def test_a_time_out_refuses_deposits_reservations_and_buy_ins_at_once(clock):
    user, wallet = new_player(funded=1000)
    table = open_table()
    started = exclude(user, "time_out", days=2)
    until = format_timestamp(clock.now + __import__("datetime").timedelta(days=2))
    assert started["excluded_until"] == until
    before = money_snapshot()
    for call, args in ((deposit, (wallet, 1)), (buy_in, (user, table, 1)), (reserve, (user, table, 1))):
        error = refusal(call, *args)
        assert (error.code, error.details) == ("self_excluded", {"kind": "time_out", "until": until})
    assert money_snapshot() == before


def test_withdrawals_and_cash_outs_are_always_allowed(clock):
    user, wallet = new_player(funded=1000)
    table = open_table()
    buy_in(user, table, 400)
    exclude(user, "self_exclusion", days=183)
    cash_out(user, table)
    account_withdraw(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=1000)
    assert seat_chips(table, user) == 0


def test_a_commit_after_the_exclusion_started_is_refused_and_the_hold_can_be_released(clock):
    user, _ = new_player(funded=1000)
    table = open_table()
    held = reserve(user, table, 300)["reservation"]["id"]
    exclude(user)
    error = refusal(reservation_commit, client="poker", idempotency_key=new_key(), reservation_id=held, whole=True)
    assert error.code == "self_excluded"
    reservation_release(client="poker", idempotency_key=new_key(), reservation_id=held)


def test_it_ends_exactly_when_it_said_and_covers_every_currency(clock):
    user, eur = new_player()
    usd = account_open(client="tests", idempotency_key=new_key(), owner_ref=user, currency="USD")["account"]["id"]
    exclude(user, "time_out", days=1)
    assert refusal(deposit, usd, 1).code == "self_excluded"
    clock.advance(days=1, seconds=-1)
    assert refusal(deposit, eur, 1).code == "self_excluded"
    clock.advance(seconds=1)
    deposit(eur, 1)
    deposit(usd, 1)


def test_nothing_shortens_it(clock):
    user, wallet = new_player()
    exclude(user, "self_exclusion", days=200)
    shorter = exclude(user, "time_out", days=1)
    assert shorter["excluded_until"] == format_timestamp(clock.now + __import__("datetime").timedelta(days=200))
    clock.advance(days=2)
    assert refusal(deposit, wallet, 1).details["kind"] == "self_exclusion"
    assert player_protection_get(owner_ref=user)["exclusion"]["kind"] == "self_exclusion"


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        ("time_out", 0),
        ("time_out", 43),
        ("self_exclusion", 182),
        ("self_exclusion", "200"),
        ("forever", 200),
        ("self_exclusion", True),
    ],
)
def test_lengths_outside_the_bounds_are_invalid_and_start_nothing(kind, days):
    user, _ = new_player()
    error = refusal(exclude, user, kind, days)
    assert error.code == "invalid_request"
    assert not SelfExclusion.objects.filter(owner_ref=user).exists()


def test_it_is_audited_with_who_and_when(clock):
    user, _ = new_player()
    exclude(user, "self_exclusion", days=365)
    event = ProtectionEvent.objects.get(owner_ref=user)
    assert (event.action, event.kind, event.new_value, event.actor) == (
        "exclusion_started",
        "self_exclusion",
        365,
        "tests",
    )
    assert event.created_at == clock.now


def test_the_same_key_starts_it_once(clock):
    user, _ = new_player()
    from accounts.protection_services import self_exclusion_start

    for _ in range(2):
        self_exclusion_start(client="tests", idempotency_key="once", owner_ref=user, kind="time_out", days=3)
    assert SelfExclusion.objects.filter(owner_ref=user).count() == 1


# --- operator policy -------------------------------------------------------------------------


def test_player_to_player_transfers_are_off_by_default(settings):
    settings.PLAYER_TRANSFERS_ENABLED = False
    _, source = new_player(funded=100)
    _, target = new_player()
    before = money_snapshot()
    error = refusal(
        account_transfer,
        client="cashier",
        idempotency_key=new_key(),
        from_account_id=source,
        to_account_id=target,
        amount=10,
    )
    assert error.code == "transfers_disabled"
    assert money_snapshot() == before
    settings.PLAYER_TRANSFERS_ENABLED = True
    account_transfer(
        client="cashier", idempotency_key=new_key(), from_account_id=source, to_account_id=target, amount=10
    )


def test_the_shipped_default_is_off():
    from balance_project import settings as shipped

    assert shipped.PLAYER_TRANSFERS_ENABLED is False or "PLAYER_TRANSFERS_ENABLED" in __import__("os").environ


def test_the_maximum_single_deposit_per_currency(settings):
    settings.MAX_SINGLE_DEPOSIT = {"EUR": 500}
    _, wallet = new_player()
    account_deposit(client="cashier", idempotency_key=new_key(), account_id=wallet, amount=500)
    error = refusal(deposit, wallet, 501)
    assert (error.code, error.details) == ("deposit_too_large", {"currency": "EUR", "maximum": 500, "requested": 501})
    _, usd = new_player(currency="USD")
    deposit(usd, 10_000)
