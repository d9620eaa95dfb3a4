"""Statements per hot call: every account a call changes is written by one UPDATE, and a row a
call creates and finishes (a buy-in's reservation) is written once.

PostgreSQL prepares a table's CHECK constraints once per statement it runs (accounts_account has
nine), so a settle that wrote its two seats and the rake shard in three UPDATEs paid that three
times. Counted from the SQL itself, with prepared statements off so that PostgreSQL's batch text
names each statement (SQLite runs them one by one)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from ledger.services import Leg, accounts_of, accounts_select, accounts_write, transaction_post
from ledger.work import Work
from reservations.models import Reservation
from tests.perf.helpers import Run, buy_in, cash_out, settle
from tests.tables.helpers import books_problems

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("a_rake_shard_per_table")]


def account_updates(call, *args, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        answer = call(*args, **kwargs)
    return sum(query["sql"].count("UPDATE accounts_account") for query in queries.captured_queries), answer


def test_a_call_writes_all_its_accounts_in_one_statement(settings):
    settings.DB_PREPARED_STATEMENTS = False
    run = Run()
    table, (a, wallet_a), (b, _) = run.table(), run.player("a", funded=5000), run.player("b", funded=5000)
    buy_in(table, a, 500)
    buy_in(table, b, 500)
    settle(table, "warm-up", {a: 10}, {b: 5}, 5)  # the table's rake shard exists from here on

    updates, answer = account_updates(settle, table, "h1", {a: 100, b: 100}, {a: 195}, 5)
    changed = {entry["account_id"] for entry in answer["transaction"]["entries"]}
    assert len(changed) == 3  # both seats and the rake shard
    assert updates == 1
    assert account_updates(buy_in, table, a, 100)[0] == 1  # wallet and seat
    assert account_updates(cash_out, table, a, amount=50)[0] == 1  # seat and wallet
    # Leaving closes the emptied seat account in the posting's own write of it.
    assert account_updates(cash_out, table, b, leave=True)[0] == 1
    # Each row got its own figures from the one statement.
    for entry in answer["transaction"]["entries"]:
        account = Account.objects.get(pk=entry["account_id"])
        assert account.entry_seq >= entry["seq"]
    assert Account.objects.get(pk=wallet_a).balance == 5000 - 500 - 100 + 50
    assert books_problems() == []


def statements_on(table, queries):
    return [
        statement
        for query in queries.captured_queries
        for statement in query["sql"].split("; ")
        if statement.startswith((f"INSERT INTO {table} ", f"UPDATE {table} "))
    ]


def test_a_buy_in_writes_its_reservation_once_as_it_ends(settings):
    """A buy-in reserves and commits in one transaction: the reservation row is inserted committed,
    not inserted pending and then updated; both its events are kept."""
    settings.DB_PREPARED_STATEMENTS = False
    run = Run()
    table, (a, _) = run.table(), run.player("a", funded=5000)
    with CaptureQueriesContext(connection) as queries:
        answer = buy_in(table, a, 100)
    (written,) = statements_on("reservations_reservation", queries)
    assert written.startswith("INSERT INTO reservations_reservation ")
    assert "'committed'" in written
    assert len(statements_on("reservations_reservationevent", queries)) == 2  # reserved, committed
    reservation = Reservation.objects.get(pk=answer["reservation"]["id"])
    assert (reservation.status, reservation.committed_amount) == ("committed", 100)
    assert list(reservation.events.order_by("pk").values_list("kind", flat=True)) == ["reserved", "committed"]
    assert books_problems() == []


def test_an_account_named_twice_in_one_write_is_refused_before_anything_is_queued():
    run = Run()
    _, wallet = run.player("a", funded=100)
    before = Account.objects.get(pk=wallet).version
    with Work() as work:
        found = accounts_select(work, "id = %s", [wallet])
        work.send()
        (row,) = accounts_of(found).values()
        with pytest.raises(ValueError, match="appears twice"):
            accounts_write(work, [row, row])
        work.commit()
    assert Account.objects.get(pk=wallet).version == before  # nothing was queued, so nothing was written


def test_an_account_closed_by_a_posting_that_leaves_money_on_it_is_refused():
    run = Run()
    table, (a, wallet) = run.table(), run.player("a", funded=5000)
    seat_account = buy_in(table, a, 500)["seat"]["account_id"]
    with Work() as work:
        tx_ids = work.next_ids("ledger_transaction")
        found = accounts_select(work, "id IN (%s, %s)", [wallet, seat_account])
        work.send()
        with pytest.raises(RuntimeError, match="closed with money on it"):
            transaction_post(
                work,
                transaction_id=work.ids(tx_ids)[0],
                kind="cash_out",
                actor="test",
                accounts=accounts_of(found),
                legs=[Leg(seat_account, -100), Leg(wallet, 100)],
                closing=[seat_account],
            )
    assert Account.objects.get(pk=seat_account).status == "active"
