import pytest
from django.db import IntegrityError, transaction

from accounts.models import Account
from accounts.services import account_freeze
from balance_project.errors import ApplicationError
from ledger.models import Transaction
from reservations.models import Reservation
from tables.models import Hand, Seat, Table
from tables.selectors import table_chips_mismatches, table_get
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_close, table_open
from tests.tables.helpers import (
    account,
    books_problems,
    money_snapshot,
    new_key,
    new_player,
    open_table,
    seat_chips,
    table_row,
)

pytestmark = pytest.mark.django_db


def refused(code, call, **kwargs):
    before = (money_snapshot(), Hand.objects.count(), list(Table.objects.values_list("chips", "status")))
    with pytest.raises(ApplicationError) as err:
        call(**kwargs)
    assert err.value.code == code, err.value
    assert (money_snapshot(), Hand.objects.count(), list(Table.objects.values_list("chips", "status"))) == before
    return err.value


def buy_in(user, table, amount, **kwargs):
    return table_buy_in(
        client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount, **kwargs
    )


def settle(table, hand_id, contributions, payouts, rake, key=None):
    return hand_settle(
        client="poker",
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
    return seat_cash_out(client="poker", idempotency_key=new_key(), table_id=table, user_id=user, **kwargs)


def rake_balance(currency="EUR"):
    rake = Account.objects.filter(kind="system", system_code="rake", currency=currency).first()
    return rake.balance if rake else 0


def seated(n, funded=1000, stack=500, currency="EUR"):
    table = open_table(currency)
    players = [new_player(funded=funded, currency=currency) for _ in range(n)]
    for user, _ in players:
        buy_in(user, table, stack)
    return table, players


def test_open_a_table_and_read_it(key):
    out = table_open(client="poker", idempotency_key=key(), table_id="holdem-1", currency="EUR")
    assert out == {"table": {"table_id": "holdem-1", "currency": "EUR", "status": "open", "chips": 0, "seats": []}}
    assert table_open(client="poker", idempotency_key=key(), table_id="holdem-1", currency="EUR") == out
    assert table_get(table_id="holdem-1") == out
    refused("currency_mismatch", table_open, client="poker", idempotency_key=key(), table_id="holdem-1", currency="USD")
    refused("invalid_request", table_open, client="poker", idempotency_key=key(), table_id="", currency="EUR")
    refused("invalid_request", table_open, client="poker", idempotency_key=key(), table_id="x", currency="eur")
    with pytest.raises(ApplicationError) as err:
        table_get(table_id="nope")
    assert err.value.code == "table_not_found"


def test_buy_in_opens_a_seat_and_top_ups_add_to_it():
    table = open_table()
    user, wallet = new_player(funded=1000)
    first = buy_in(user, table, 300)
    assert first["reservation"]["status"] == "committed" and first["transaction"]["kind"] == "buy_in"
    again = buy_in(user, table, 200)
    assert again["seat"]["id"] == first["seat"]["id"] and again["seat"]["chips"] == 500
    assert Seat.objects.filter(table__table_id=table).count() == 1
    seat_account = account(first["seat"]["account_id"])
    assert (seat_account.kind, seat_account.owner_ref, seat_account.currency) == ("seat", user, "EUR")
    assert account(wallet).balance == 500 and table_row(table).chips == 500
    assert table_get(table_id=table)["table"]["seats"] == [again["seat"]]
    assert books_problems() == []


def test_buy_in_refusals_change_nothing(key):
    eur, usd = open_table("EUR"), open_table("USD")
    user, wallet = new_player(funded=100)
    refused("insufficient_funds", buy_in, user=user, table=eur, amount=101)
    refused("currency_mismatch", buy_in, user=user, table=usd, amount=10)
    refused("invalid_amount", buy_in, user=user, table=eur, amount=-10)
    refused("table_not_found", buy_in, user=user, table="missing", amount=10)
    table_close(client="poker", idempotency_key=key(), table_id=eur)
    refused("table_closed", buy_in, user=user, table=eur, amount=10)
    other = open_table()
    account_freeze(client="tests", idempotency_key=key(), account_id=wallet)
    refused("account_frozen", buy_in, user=user, table=other, amount=10)
    assert not Seat.objects.exists() and not Reservation.objects.exists()


def test_a_hand_nets_each_seat_and_pays_the_rake():
    table, [(a, _), (b, _), (c, _)] = seated(3)
    out = settle(table, "hand-1", {a: 100, b: 100, c: 50}, {a: 240}, 10)
    assert (seat_chips(table, a), seat_chips(table, b), seat_chips(table, c)) == (640, 400, 450)
    assert table_row(table).chips == 1490 and rake_balance() == 10
    tx = Transaction.objects.get(pk=out["transaction"]["id"])
    assert tx.kind == "hand_settlement" and tx.metadata["hand_id"] == "hand-1" and tx.metadata["table_id"] == table
    amounts = sorted(e.amount for e in tx.entries.all())
    assert amounts == [-100, -50, 10, 140]  # a's two legs netted into one
    assert out["hand_id"] == "hand-1" and out["table"]["chips"] == 1490
    assert table_chips_mismatches() == [] and books_problems() == []


def test_a_hand_id_repeats_with_the_first_answer_or_conflicts():
    table, [(a, _), (b, _)] = seated(2)
    first = settle(table, "h-7", {a: 100, b: 100}, {b: 195}, 5)
    assert settle(table, "h-7", {a: 100, b: 100}, {b: 195}, 5) == first
    assert Hand.objects.count() == 1 and seat_chips(table, b) == 595
    refused(
        "hand_conflict", settle, table=table, hand_id="h-7", contributions={a: 100, b: 100}, payouts={a: 195}, rake=5
    )
    # The same hand id at another table is another hand.
    other, [(x, _), (y, _)] = seated(2)
    settle(other, "h-7", {x: 10}, {y: 10}, 0)


def test_a_hand_with_all_zero_nets_is_still_recorded():
    table, [(a, _), (b, _)] = seated(2)
    out = settle(table, "h-zero", {a: 50, b: 0}, {a: 50}, 0)
    assert out["transaction"] is None
    assert Hand.objects.filter(hand_id="h-zero").exists()
    assert settle(table, "h-zero", {a: 50, b: 0}, {a: 50}, 0) == out
    assert (seat_chips(table, a), seat_chips(table, b)) == (500, 500)


def test_bad_settlements_are_refused_and_change_nothing():
    table, [(a, _), (b, _)] = seated(2)
    stranger, _ = new_player(funded=1000)
    cases = [
        ("settlement_invalid", {a: 100, b: 100}, {a: 190}, 5),
        ("settlement_invalid", {}, {}, 0),
        ("insufficient_chips", {a: 501, b: 0}, {b: 500}, 1),
        ("player_not_seated", {a: 100, stranger: 100}, {a: 200}, 0),
        ("player_not_seated", {a: 100}, {stranger: 100}, 0),
        ("invalid_amount", {a: -100, b: 100}, {}, 0),
        ("invalid_amount", {a: 100}, {b: 110}, -10),
        ("invalid_amount", {a: 10.5}, {b: 10.5}, 0),
        ("invalid_request", [a, 100], {b: 100}, 0),
    ]
    for code, contributions, payouts, rake in cases:
        refused(code, settle, table=table, hand_id="h-bad", contributions=contributions, payouts=payouts, rake=rake)
    assert not Hand.objects.exists()


def test_cash_out_part_or_all_and_leave():
    table, [(a, wallet_a)] = seated(1)
    out = cash_out(table, a, amount=200)
    assert out["seat"]["chips"] == 300 and out["account"]["balance"] == 700 and out["transaction"]["kind"] == "cash_out"
    refused("insufficient_chips", cash_out, table=table, user=a, amount=301)
    refused("invalid_amount", cash_out, table=table, user=a, amount=-1)
    out = cash_out(table, a)
    assert out["seat"]["chips"] == 0 and out["seat"]["status"] == "active" and account(wallet_a).balance == 1000
    assert cash_out(table, a)["transaction"] is None
    left = cash_out(table, a, leave=True)
    assert left["seat"]["status"] == "left" and account(left["seat"]["account_id"]).status == "closed"
    refused("player_not_seated", cash_out, table=table, user=a)
    again = buy_in(a, table, 100)
    assert again["seat"]["id"] != left["seat"]["id"] and again["seat"]["chips"] == 100
    assert table_row(table).chips == 100 and books_problems() == []


def test_leave_cashes_out_everything():
    table, [(a, wallet_a)] = seated(1)
    refused("invalid_request", cash_out, table=table, user=a, amount=100, leave=True)
    out = cash_out(table, a, leave=True)
    assert out["transaction"]["entries"][0]["amount"] in (500, -500)
    assert out["seat"]["status"] == "left" and account(wallet_a).balance == 1000 and table_row(table).chips == 0


def test_cash_out_into_a_frozen_wallet_is_allowed(key):
    table, [(a, wallet_a)] = seated(1)
    account_freeze(client="tests", idempotency_key=key(), account_id=wallet_a)
    cash_out(table, a, leave=True)
    assert account(wallet_a).balance == 1000 and account(wallet_a).status == "frozen"


def test_closing_needs_every_seat_at_zero(key):
    table, [(a, _), (b, _)] = seated(2)
    settle(table, "h1", {a: 100}, {b: 90}, 10)
    err = refused("table_not_empty", table_close, client="poker", idempotency_key=key(), table_id=table)
    assert err.details["seats"] == {a: 400, b: 590}
    cash_out(table, a)
    cash_out(table, b, leave=True)
    out = table_close(client="poker", idempotency_key=key(), table_id=table)
    assert out["table"]["status"] == "closed" and out["table"]["seats"] == []
    assert Seat.objects.filter(table__table_id=table, status="active").count() == 0
    assert table_close(client="poker", idempotency_key=key(), table_id=table)["table"]["status"] == "closed"
    refused("table_closed", table_open, client="poker", idempotency_key=key(), table_id=table, currency="EUR")
    assert books_problems() == []


def test_the_database_refuses_a_second_active_seat_and_negative_chips():
    table, [(a, _)] = seated(1)
    seat = Seat.objects.get(user_id=a)
    extra = Account.objects.create(kind="seat", owner_ref=a, currency="EUR")
    with pytest.raises(IntegrityError), transaction.atomic():
        Seat.objects.create(table=seat.table, user_id=a, account=extra)
    with pytest.raises(IntegrityError), transaction.atomic():
        Table.objects.filter(table_id=table).update(chips=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Table.objects.filter(table_id=table).update(status="closed")


def test_the_books_check_used_by_these_tests_sees_a_broken_invariant():
    table, [(a, _)] = seated(1)
    assert books_problems() == []
    Table.objects.filter(table_id=table).update(chips=499)
    assert any("table" in p for p in books_problems())
    Table.objects.filter(table_id=table).update(chips=500)
    Reservation.objects.filter(user_id=a).update(status="pending", committed_amount=0, transaction=None, ended_at=None)
    assert any("pending reservations" in p for p in books_problems())
