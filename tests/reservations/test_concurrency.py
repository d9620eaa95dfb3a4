"""Races on real threads against the real database (each thread closes its own connection)."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from balance_project.errors import ApplicationError
from reservations.models import Reservation
from reservations.services import (
    reservation_commit,
    reservation_expire_overdue,
    reservation_release,
    reservation_reserve,
)
from tables.models import Seat
from tables.services import hand_settle, seat_cash_out, table_buy_in
from tests.tables.helpers import account, books_problems, new_key, new_player, open_table, seat_chips

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(targets):
    """Start every callable at once; -> [("ok", result) | (error code, None) | ("crash", repr)]."""
    barrier = threading.Barrier(len(targets))
    results = [None] * len(targets)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = ("ok", targets[i]())
        except ApplicationError as refusal:
            results[i] = (refusal.code, None)
        except Exception as crash:  # a deadlock or a lock timeout would land here
            results[i] = ("crash", repr(crash))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_fifty_concurrent_reserves_against_a_wallet_that_affords_ten():
    table = open_table()
    user, wallet = new_player(funded=1000)

    def reserve():
        return reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)

    results = run_threads([reserve] * 50)
    codes = sorted(code for code, _ in results)
    assert codes.count("ok") == 10 and codes.count("insufficient_funds") == 40, codes
    pending = Reservation.objects.filter(account_id=wallet, status="pending")
    assert pending.count() == 10
    assert account(wallet).held == sum(r.amount for r in pending) == 1000
    assert account(wallet).balance == 1000
    assert books_problems() == []


def test_commit_racing_the_expiry_sweep_has_exactly_one_winner():
    table = open_table()
    user, wallet = new_player(funded=30 * 100)
    for _ in range(30):
        r = reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)[
            "reservation"
        ]
        commit = lambda: reservation_commit(  # noqa: E731
            client="poker",
            idempotency_key=new_key(),
            reservation_id=r["id"],  # noqa: B023
            whole=True,
        )
        # A cutoff past the expiry makes the sweep a real contender while the commit still sees it in time.
        sweep = lambda: reservation_expire_overdue(now=timezone.now() + timedelta(hours=2))  # noqa: E731
        (commit_code, _), (sweep_code, swept) = run_threads([commit, sweep])
        status = Reservation.objects.get(pk=r["id"]).status
        assert sweep_code == "ok"
        if commit_code == "ok":
            assert (swept, status) == (0, "committed")
        else:
            assert (commit_code, swept, status) == ("reservation_expired", 1, "expired")
        wallet_row = account(wallet)
        assert wallet_row.held == 0
        assert wallet_row.balance + seat_chips(table, user) == 30 * 100
    assert books_problems() == []


def test_commit_racing_release_has_exactly_one_winner():
    table = open_table()
    user, wallet = new_player(funded=30 * 100)
    outcomes = set()
    for _ in range(30):
        r = reservation_reserve(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)[
            "reservation"
        ]
        commit = lambda: reservation_commit(  # noqa: E731
            client="poker",
            idempotency_key=new_key(),
            reservation_id=r["id"],  # noqa: B023
            whole=True,
        )
        release = lambda: reservation_release(client="poker", idempotency_key=new_key(), reservation_id=r["id"])  # noqa: E731, B023
        (commit_code, _), (release_code, _) = run_threads([commit, release])
        assert sorted([commit_code, release_code]) == ["ok", "reservation_not_pending"]
        outcomes.add(Reservation.objects.get(pk=r["id"]).status)
        assert account(wallet).held == 0
        assert account(wallet).balance + seat_chips(table, user) == 30 * 100
    assert outcomes <= {"committed", "released"}
    assert books_problems() == []


def test_concurrent_first_buy_ins_of_one_player_open_one_seat():
    table = open_table()
    user, wallet = new_player(funded=1000)
    buy = lambda: table_buy_in(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=50)  # noqa: E731
    results = run_threads([buy] * 10)
    assert [code for code, _ in results] == ["ok"] * 10
    assert Seat.objects.filter(table__table_id=table).count() == 1
    assert seat_chips(table, user) == 500 and account(wallet).balance == 500
    assert books_problems() == []


def test_mixed_traffic_at_two_tables_keeps_the_books():
    tables = [open_table(), open_table()]
    players = [new_player(funded=5000) for _ in range(4)]
    for table in tables:
        for user, _ in players:
            table_buy_in(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=500)
    expected = {
        "ok",
        "insufficient_funds",
        "insufficient_chips",
        "reservation_not_pending",
        "reservation_expired",
        "player_not_seated",
    }

    def traffic(seed):
        rng = random.Random(seed)

        def run():
            for n in range(15):
                table = rng.choice(tables)
                (a, _), (b, _) = rng.sample(players, 2)
                op = rng.choice(["buy", "hand", "cash", "leave", "hold"])
                try:
                    if op == "buy":
                        table_buy_in(
                            client="poker",
                            idempotency_key=new_key(),
                            user_id=a,
                            table_id=table,
                            amount=rng.randint(1, 200),
                        )
                    elif op == "hand":
                        stake = rng.randint(1, 50)
                        hand_settle(
                            client="poker",
                            idempotency_key=new_key(),
                            table_id=table,
                            hand_id=f"{seed}-{n}",
                            contributions={a: stake, b: stake},
                            payouts={b: 2 * stake - 1},
                            rake=1,
                        )
                    elif op == "cash":
                        seat_cash_out(
                            client="poker",
                            idempotency_key=new_key(),
                            table_id=table,
                            user_id=a,
                            amount=rng.randint(1, 30),
                        )
                    elif op == "leave":  # every chip back to the wallet, the seat and its account closed
                        seat_cash_out(client="poker", idempotency_key=new_key(), table_id=table, user_id=a, leave=True)
                    else:
                        r = reservation_reserve(
                            client="poker",
                            idempotency_key=new_key(),
                            user_id=a,
                            table_id=table,
                            amount=rng.randint(1, 100),
                        )["reservation"]
                        reservation_release(client="poker", idempotency_key=new_key(), reservation_id=r["id"])
                except ApplicationError as refusal:
                    if refusal.code not in expected:
                        raise

        return run

    results = run_threads([traffic(seed) for seed in range(6)])
    assert [code for code, _ in results] == ["ok"] * 6, results
    assert books_problems() == []
    left = Seat.objects.filter(table__table_id__in=tables, status=Seat.Status.LEFT)
    assert {seat.account.status for seat in left} <= {Account.Status.CLOSED}
    assert not Account.objects.filter(status=Account.Status.CLOSED).exclude(balance=0, held=0).exists()


def test_the_same_buy_in_and_hand_sent_at_once_move_money_once():
    """Five callers retry one buy-in (and one hand) with the same key at the same moment: one effect,
    one answer for all. On PostgreSQL this runs the hot path, whose effect and key commit together."""
    table = open_table()
    (a, wallet_a), (b, _) = new_player(funded=1000), new_player(funded=1000)
    table_buy_in(client="poker", idempotency_key=new_key(), user_id=b, table_id=table, amount=100)
    buy_key, hand_key = new_key(), new_key()
    buy = lambda: table_buy_in(client="poker", idempotency_key=buy_key, user_id=a, table_id=table, amount=300)  # noqa: E731
    bought = run_threads([buy] * 5)
    assert [code for code, _ in bought] == ["ok"] * 5, bought
    assert len({answer["transaction"]["id"] for _, answer in bought}) == 1
    assert account(wallet_a).balance == 700 and seat_chips(table, a) == 300

    hand = lambda: hand_settle(  # noqa: E731
        client="poker",
        idempotency_key=hand_key,
        table_id=table,
        hand_id="h1",
        contributions={a: 40, b: 40},
        payouts={a: 78},
        rake=2,
    )
    settled = run_threads([hand] * 5)
    assert [code for code, _ in settled] == ["ok"] * 5, settled
    assert len({answer["transaction"]["id"] for _, answer in settled}) == 1
    assert (seat_chips(table, a), seat_chips(table, b)) == (338, 60)
    assert books_problems() == []


def test_first_rakes_at_many_tables_at_once_share_one_new_shard(settings):
    """Six tables settle their first hand at once and all rake into one shard that does not exist
    yet: one account is created, every settlement lands on it, nothing deadlocks."""
    from accounts.models import Account

    settings.RAKE_ACCOUNT_SHARDS = 1
    currency = "GBP"  # a currency no other test rakes in: the shard is new
    seated = []
    for _ in range(6):
        table = open_table(currency)
        players = [new_player(funded=500, currency=currency)[0] for _ in range(2)]
        for user in players:
            table_buy_in(client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)
        seated.append((table, players))

    def settle(table, a, b):
        return lambda: hand_settle(
            client="poker",
            idempotency_key=new_key(),
            table_id=table,
            hand_id="first",
            contributions={a: 20, b: 20},
            payouts={a: 37},
            rake=3,
        )

    results = run_threads([settle(table, a, b) for table, (a, b) in seated])
    assert [code for code, _ in results] == ["ok"] * 6, results
    rake = Account.objects.get(kind="system", system_code="rake", currency=currency)
    assert (rake.shard, rake.balance, rake.entry_seq) == (0, 18, 6)
    assert books_problems() == []
