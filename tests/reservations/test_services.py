import functools
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.services import account_freeze
from balance_project.errors import ApplicationError
from ledger.journal import JOURNALED
from ledger.models import Transaction
from ledger.work import Work
from reservations.models import Reservation, ReservationEvent
from reservations.services import (
    reservation_commit,
    reservation_expire_overdue,
    reservation_release,
    reservation_reserve,
)
from reservations.tasks import expire_overdue_reservations
from tables.models import Table
from tables.services import table_close
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

# Commit everything held, as all: true asks (a missing amount never means all).
commit_all = functools.partial(reservation_commit, whole=True)

pytestmark = pytest.mark.django_db


def reserve(user, table, amount, **kwargs):
    return reservation_reserve(
        client="poker", idempotency_key=new_key(), user_id=user, table_id=table, amount=amount, **kwargs
    )["reservation"]


def refused(code, call, *args, **kwargs):
    """Call and expect the refusal ``code`` with every balance and hold unchanged."""
    before = money_snapshot()
    with pytest.raises(ApplicationError) as err:
        call(*args, **kwargs)
    assert err.value.code == code, err.value
    assert money_snapshot() == before
    return err.value


def overdue(reservation_id):
    """Move the reservation's expiry into the past, as if its time had run out: written the way the
    service writes, journal record included, so the verifier sees a row the journal vouches for."""
    moment = timezone.now() - timedelta(seconds=1)
    with Work() as work:
        work.execute(
            "UPDATE reservations_reservation SET expires_at = %s WHERE id = %s", [work.time(moment), reservation_id]
        )
        reservation = Reservation.objects.get(pk=reservation_id)
        values = {column: getattr(reservation, column) for column, _ in JOURNALED["reservations_reservation"]}
        work.row("reservations_reservation", reservation_id, values | {"expires_at": moment})
        work.commit()


def outcome_count(outcome):
    return REGISTRY.get_sample_value("balance_reservations_total", {"outcome": outcome}) or 0


def test_reserve_holds_funds_without_moving_them():
    table = open_table()
    user, wallet = new_player(funded=1000)
    before = timezone.now()
    r = reserve(user, table, 300)
    assert (account(wallet).balance, account(wallet).held, account(wallet).available) == (1000, 300, 700)
    assert r["status"] == "pending" and r["amount"] == 300 and r["table_id"] == table and r["account_id"] == wallet
    row = Reservation.objects.get(pk=r["id"])
    ttl = settings.RESERVATION_DEFAULT_TTL_SECONDS
    assert before + timedelta(seconds=ttl) <= row.expires_at <= timezone.now() + timedelta(seconds=ttl)
    event = ReservationEvent.objects.get(reservation=row)
    assert (event.kind, event.to_status, event.actor, event.amount) == ("reserved", "pending", "poker", 300)
    assert books_problems() == []


def test_ttl_is_per_call_and_bounded():
    table = open_table()
    user, _ = new_player(funded=1000)
    r = reserve(user, table, 10, ttl_seconds=settings.RESERVATION_MAX_TTL_SECONDS)
    row = Reservation.objects.get(pk=r["id"])
    assert (row.expires_at - row.created_at).total_seconds() == pytest.approx(
        settings.RESERVATION_MAX_TTL_SECONDS, abs=1
    )
    for ttl in (settings.RESERVATION_MIN_TTL_SECONDS - 1, settings.RESERVATION_MAX_TTL_SECONDS + 1, -5, 1.5, True):
        refused("invalid_request", reserve, user, table, 10, ttl_seconds=ttl)
    assert Reservation.objects.count() == 1


@pytest.mark.parametrize("amount", [0, -1, 10.0, "1e3", None, True, "-5"])
def test_reserve_refuses_amounts_that_are_not_positive_integers(amount):
    table = open_table()
    user, _ = new_player(funded=1000)
    refused("invalid_amount", reserve, user, table, amount)
    assert not Reservation.objects.exists()


def test_reserve_refusals_change_nothing(key):
    eur, usd = open_table("EUR"), open_table("USD")
    user, wallet = new_player(funded=100)
    refused("insufficient_funds", reserve, user, eur, 101)
    reserve(user, eur, 60)
    refused("insufficient_funds", reserve, user, eur, 41)
    refused("currency_mismatch", reserve, user, usd, 10)
    refused("account_not_found", reserve, "nobody-" + key(), eur, 10)
    refused("table_not_found", reserve, user, "no-such-table", 10)
    refused("invalid_request", reserve, user, "bad/table id", 10)
    account_freeze(client="tests", idempotency_key=key(), account_id=wallet)
    refused("account_frozen", reserve, user, eur, 10)
    assert Reservation.objects.count() == 1


def test_reserve_on_a_closed_table_is_refused(key):
    table = open_table()
    user, _ = new_player(funded=100)
    table_close(client="tests", idempotency_key=key(), table_id=table)
    refused("table_closed", reserve, user, table, 10)


def test_reserve_is_idempotent_by_key(key):
    table = open_table()
    user, wallet = new_player(funded=1000)
    k = key()
    first = reservation_reserve(client="poker", idempotency_key=k, user_id=user, table_id=table, amount=100)
    assert reservation_reserve(client="poker", idempotency_key=k, user_id=user, table_id=table, amount=100) == first
    assert account(wallet).held == 100
    refused(
        "idempotency_conflict",
        reservation_reserve,
        client="poker",
        idempotency_key=k,
        user_id=user,
        table_id=table,
        amount=101,
    )


def test_commit_moves_the_hold_into_the_seat(django_capture_on_commit_callbacks):
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 400)
    committed_before = outcome_count("committed")
    with django_capture_on_commit_callbacks(execute=True):
        out = reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=r["id"], whole=True)
    assert outcome_count("committed") == committed_before + 1
    assert out["reservation"]["status"] == "committed" and out["reservation"]["committed_amount"] == 400
    assert out["seat"]["chips"] == 400 and out["seat"]["user_id"] == user and out["seat"]["status"] == "active"
    assert (account(wallet).balance, account(wallet).held) == (600, 0)
    assert seat_chips(table, user) == 400 and table_row(table).chips == 400
    tx = Transaction.objects.get(pk=out["transaction"]["id"])
    assert tx.kind == "buy_in" and tx.metadata["table_id"] == table and tx.metadata["reservation_id"] == r["id"]
    event = ReservationEvent.objects.get(reservation_id=r["id"], kind="committed")
    assert (event.from_status, event.to_status, event.actor, event.amount) == ("pending", "committed", "poker", 400)
    assert books_problems() == []


def test_partial_commit_releases_the_rest_in_the_same_transaction():
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 500)
    out = reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=r["id"], amount="350")
    assert (out["reservation"]["committed_amount"], out["reservation"]["released_amount"]) == (350, 150)
    assert (account(wallet).balance, account(wallet).held, account(wallet).available) == (650, 0, 650)
    assert seat_chips(table, user) == 350
    assert books_problems() == []


def test_commit_more_than_held_is_refused():
    table = open_table()
    user, _ = new_player(funded=1000)
    r = reserve(user, table, 100)
    refused(
        "insufficient_funds",
        reservation_commit,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=r["id"],
        amount=101,
    )
    refused(
        "invalid_amount",
        reservation_commit,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=r["id"],
        amount=-1,
    )
    assert Reservation.objects.get(pk=r["id"]).status == "pending"
    assert seat_chips(table, user) == 0


def test_transitions_are_legal_only_from_pending():
    table = open_table()
    user, wallet = new_player(funded=1000)
    released = reserve(user, table, 100)
    reservation_release(client="poker", idempotency_key=new_key(), reservation_id=released["id"], reason="left")
    assert account(wallet).held == 0
    refused(
        "reservation_not_pending",
        commit_all,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=released["id"],
    )
    refused(
        "reservation_not_pending",
        reservation_release,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=released["id"],
    )

    committed = reserve(user, table, 200)
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=committed["id"], whole=True)
    # Releasing a committed reservation moves nothing.
    refused(
        "reservation_not_pending",
        reservation_release,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=committed["id"],
    )
    refused(
        "reservation_not_pending",
        commit_all,
        client="poker",
        idempotency_key=new_key(),
        reservation_id=committed["id"],
    )
    refused("reservation_not_found", commit_all, client="poker", idempotency_key=new_key(), reservation_id=10**9)
    refused(
        "reservation_not_found", reservation_release, client="poker", idempotency_key=new_key(), reservation_id=10**9
    )
    assert (account(wallet).balance, seat_chips(table, user)) == (800, 200)


def test_same_key_replays_the_commit_and_the_release():
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 100)
    k = new_key()
    first = reservation_commit(client="poker", idempotency_key=k, reservation_id=r["id"], whole=True)
    assert reservation_commit(client="poker", idempotency_key=k, reservation_id=r["id"], whole=True) == first
    r2 = reserve(user, table, 50)
    k2 = new_key()
    first = reservation_release(client="poker", idempotency_key=k2, reservation_id=r2["id"])
    assert reservation_release(client="poker", idempotency_key=k2, reservation_id=r2["id"]) == first
    assert (account(wallet).balance, account(wallet).held, seat_chips(table, user)) == (900, 0, 100)


def test_release_records_who_and_why():
    table = open_table()
    user, _ = new_player(funded=1000)
    r = reserve(user, table, 100)
    out = reservation_release(
        client="poker",
        idempotency_key=new_key(),
        reservation_id=r["id"],
        reason="player cancelled",
        actor="support:ann",
    )
    assert (out["reservation"]["ended_by"], out["reservation"]["end_reason"]) == ("support:ann", "player cancelled")
    event = ReservationEvent.objects.get(reservation_id=r["id"], kind="released")
    assert (event.actor, event.reason, event.amount) == ("support:ann", "player cancelled", 100)


def test_the_sweep_expires_only_overdue_pending_reservations():
    table = open_table()
    user, wallet = new_player(funded=1000)
    late, fresh, done = reserve(user, table, 100), reserve(user, table, 200), reserve(user, table, 300)
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=done["id"], whole=True)
    overdue(late["id"])
    overdue(done["id"])
    assert reservation_expire_overdue() == 1
    assert reservation_expire_overdue() == 0
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert (statuses[late["id"]], statuses[fresh["id"]], statuses[done["id"]]) == ("expired", "pending", "committed")
    assert account(wallet).held == 200
    event = ReservationEvent.objects.get(reservation_id=late["id"], kind="expired")
    assert event.actor == "expiry-job"
    # A cutoff in the future reaches the fresh one too; the Celery task is the same sweep.
    assert reservation_expire_overdue(now=timezone.now() + timedelta(hours=2)) == 1
    assert account(wallet).held == 0
    assert books_problems() == []


def test_the_celery_task_runs_the_sweep():
    table = open_table()
    user, wallet = new_player(funded=1000)
    overdue(reserve(user, table, 100)["id"])
    assert expire_overdue_reservations() == 1
    assert account(wallet).held == 0


def test_commit_or_release_after_expiry_is_refused():
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 100)
    overdue(r["id"])
    reservation_expire_overdue()
    refused("reservation_expired", commit_all, client="poker", idempotency_key=new_key(), reservation_id=r["id"])
    refused(
        "reservation_expired", reservation_release, client="poker", idempotency_key=new_key(), reservation_id=r["id"]
    )
    assert (account(wallet).balance, account(wallet).held, seat_chips(table, user)) == (1000, 0, 0)


@pytest.mark.parametrize("call", [commit_all, reservation_release])
def test_an_overdue_reservation_not_yet_swept_is_refused_and_expired_on_the_spot(call):
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 100)
    overdue(r["id"])
    with pytest.raises(ApplicationError) as err:
        call(client="poker", idempotency_key=new_key(), reservation_id=r["id"])
    assert err.value.code == "reservation_expired"
    row = Reservation.objects.get(pk=r["id"])
    assert row.status == "expired" and row.ended_at is not None
    assert (account(wallet).balance, account(wallet).held, seat_chips(table, user)) == (1000, 0, 0)
    assert reservation_expire_overdue() == 0
    assert books_problems() == []


def test_commit_on_a_frozen_wallet_is_refused_and_the_hold_can_still_be_released(key):
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 100)
    account_freeze(client="tests", idempotency_key=key(), account_id=wallet)
    refused("account_frozen", commit_all, client="poker", idempotency_key=new_key(), reservation_id=r["id"])
    reservation_release(client="poker", idempotency_key=new_key(), reservation_id=r["id"])
    assert account(wallet).held == 0


def test_closing_the_table_releases_its_pending_reservations(key):
    table = open_table()
    user, wallet = new_player(funded=1000)
    r = reserve(user, table, 100)
    table_close(client="tests", idempotency_key=key(), table_id=table)
    row = Reservation.objects.get(pk=r["id"])
    assert (row.status, row.end_reason, account(wallet).held) == ("released", "table closed", 0)
    refused("reservation_not_pending", commit_all, client="poker", idempotency_key=new_key(), reservation_id=r["id"])


def test_commit_for_a_table_closed_behind_its_back_is_refused_as_closed():
    table = open_table()
    user, _ = new_player(funded=1000)
    r = reserve(user, table, 100)
    # Only possible by a write that skips table_close (which releases pending reservations).
    Table.objects.filter(table_id=table).update(status="closed", closed_at=timezone.now())
    refused("table_closed", commit_all, client="poker", idempotency_key=new_key(), reservation_id=r["id"])
    assert Reservation.objects.get(pk=r["id"]).status == "pending"


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 0},
        {"amount": -5},
        {"committed_amount": 101},
        {"committed_amount": -1},
        {"status": "lost"},
        {"status": "committed"},
        {"status": "released"},
    ],
)
def test_the_database_refuses_impossible_reservations(change):
    table = open_table()
    user, _ = new_player(funded=1000)
    r = reserve(user, table, 100)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reservation.objects.filter(pk=r["id"]).update(**change)


def test_release_and_expiry_are_counted_only_once_committed(django_capture_on_commit_callbacks):
    table = open_table()
    user, _ = new_player(funded=1000)
    released, expired = outcome_count("released"), outcome_count("expired")
    r1, r2 = reserve(user, table, 10), reserve(user, table, 10)
    with django_capture_on_commit_callbacks(execute=True):
        reservation_release(client="poker", idempotency_key=new_key(), reservation_id=r1["id"])
        overdue(r2["id"])
        reservation_expire_overdue()
    assert (outcome_count("released"), outcome_count("expired")) == (released + 1, expired + 1)
    # A refused call counts nothing.
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ApplicationError):
            reservation_release(client="poker", idempotency_key=new_key(), reservation_id=r1["id"])
    assert outcome_count("released") == released + 1


def test_expiry_rate_is_a_rounded_decimal_string():
    from reservations.selectors import reservation_expiry_rate

    table = open_table()
    user, _ = new_player(funded=1000)
    start = timezone.now()
    ids = [reserve(user, table, 10)["id"] for _ in range(3)]
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=ids[0], whole=True)
    reservation_commit(client="poker", idempotency_key=new_key(), reservation_id=ids[1], whole=True)
    overdue(ids[2])
    reservation_expire_overdue()
    end = timezone.now() + timedelta(seconds=1)
    rate = reservation_expiry_rate(start=start, end=end)
    assert (rate["expired"], rate["committed"], rate["released"], rate["rate"]) == (1, 2, 0, "0.3333")
    reserve(user, table, 10)  # pending: not counted
    assert reservation_expiry_rate(start=start, end=end)["total"] == 3
    assert reservation_expiry_rate(start=end, end=end + timedelta(hours=1))["rate"] == "0.0000"
    with pytest.raises(ApplicationError) as err:
        reservation_expiry_rate(start=end, end=start)
    assert err.value.code == "invalid_request"


def test_the_management_command_runs_the_sweep():
    from io import StringIO

    from django.core.management import call_command

    table = open_table()
    user, wallet = new_player(funded=1000)
    overdue(reserve(user, table, 100)["id"])
    out = StringIO()
    call_command("reservations_expire", stdout=out)
    assert "expired 1" in out.getvalue() and account(wallet).held == 0
