"""What a call does to a reservation whose rows it holds locked, on the caller's work: raise one,
commit it into a seat, release it, end it with its audit event; and the reads a reserve or a buy-in
queues first. The reservation services (reservations/services.py) and the table services
(tables/services.py) both build on these, so each transition is written once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts.protection import ProtectionQuery, protection_select
from accounts.results import transaction_result
from balance_project.errors import ApplicationError
from ledger.chain import format_timestamp
from ledger.models import Transaction
from ledger.rows import AccountRow
from ledger.services import Leg, holds_change, transaction_post
from ledger.work import Result, Work
from reservations.metrics import reservation_outcome_count
from reservations.models import Reservation, ReservationEvent
from reservations.results import reservation_result
from reservations.rows import RESERVATION_COLUMNS, ReservationRow, event_insert, reservation_insert, reservation_write
from tables.results import seat_result
from tables.rows import SeatRow, TableRow, table_write
from tables.seating import TABLE_CURRENCY

MAX_REASON = 255


def player_protection_select(work: Work, *, user_id: str, table_id: str) -> ProtectionQuery:
    """Queue the player's loss and buy-in limits in the table's currency and their exclusion, for
    a reserve or a buy-in (after the wallet's lock; accounts/protection.py)."""
    return protection_select(
        work,
        owner_sql="%s",
        owner_params=[user_id],
        currency_sql=TABLE_CURRENCY,
        currency_params=[table_id],
        kinds=("loss", "buy_in"),
        now=timezone.now(),
    )


def reservation_select(work: Work, reservation_id: int) -> Result:
    return work.query(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations_reservation WHERE id = %s{work.lock('FOR NO KEY UPDATE')}",
        [reservation_id],
    )


def reservation_new(
    work: Work,
    *,
    reservation_id: int,
    table: TableRow,
    wallet: AccountRow,
    user_id: str,
    amount: int,
    ttl_seconds: int,
    actor: str,
    ends_in_this_work: bool = False,
) -> ReservationRow:
    """Queue a pending reservation of ``amount`` on ``wallet`` for ``table`` (the caller holds the
    table's and the wallet's locks and has raised the hold), with its ``reserved`` event.
    ``ends_in_this_work``: the caller commits or releases it before this work commits (a buy-in),
    so its row is written once, as it ends (``reservation_end``), not inserted and then updated."""
    now = timezone.now()
    reservation = ReservationRow(
        reservation_id,
        wallet.id,
        user_id,
        table.currency,
        amount,
        0,
        Reservation.Status.PENDING,
        now + timedelta(seconds=ttl_seconds),
        None,
        None,
        actor[:128],
        None,
        "",
        "",
        now,
        now,
        table,
        written=not ends_in_this_work,
    )
    if reservation.written:
        reservation_insert(work, reservation, table.id)
    event_insert(
        work,
        reservation_id=reservation.id,
        kind=ReservationEvent.Kind.RESERVED,
        from_status="",
        to_status=Reservation.Status.PENDING,
        amount=amount,
        actor=actor[:128],
        reason=f"ttl {ttl_seconds}s",
        now=now,
    )
    return reservation


def reservation_commit_locked(
    work: Work,
    *,
    reservation: ReservationRow,
    table: TableRow,
    seat: SeatRow,
    amount: int | None,
    actor: str,
    accounts: dict[int, AccountRow],
    transaction_id: int,
    held: bool = True,
) -> dict[str, Any]:
    """Commit a pending reservation into ``seat``: the caller holds, in order, the table, the seat,
    the reservation and ``accounts`` (the wallet and the seat account). Answers from those rows
    without reading anything back. ``held``: the reservation's hold is on the wallet (a buy-in,
    which reserves and commits at once, never raised it)."""
    committed = reservation.amount if amount is None else amount
    if committed > reservation.amount:
        raise ApplicationError(
            "insufficient_funds",
            f"reservation {reservation.id} holds {reservation.amount}, {committed} requested",
            {"reservation_id": reservation.id, "held": reservation.amount, "requested": committed},
        )
    released = reservation.amount - committed
    tx = transaction_post(
        work,
        transaction_id=transaction_id,
        kind=Transaction.Kind.BUY_IN,
        actor=actor,
        accounts=accounts,
        legs=[Leg(reservation.account_id, -committed), Leg(seat.account_id, committed)],
        hold_deltas={reservation.account_id: -reservation.amount} if held else None,
        metadata={
            "table_id": table.table_id,
            "user_id": reservation.user_id,
            "reservation_id": reservation.id,
            "seat_id": seat.id,
            "released": released,
        },
    )
    table.chips += committed
    table_write(work, table, tx.created_at)
    reservation.committed_amount, reservation.seat_id, reservation.transaction_id = committed, seat.id, tx.id
    reservation_end(
        work,
        reservation,
        status=Reservation.Status.COMMITTED,
        actor=actor,
        amount=committed,
        reason=f"committed {committed}, released {released}",
    )
    seat.account = accounts[seat.account_id]
    return {
        "reservation": reservation_result(reservation),
        "seat": seat_result(seat),
        "transaction": transaction_result(tx),
    }


def reservation_release_locked(
    work: Work, *, reservation: ReservationRow, accounts: dict[int, AccountRow], actor: str, reason: str
) -> None:
    """Release a pending reservation the caller has locked, with its wallet (in ``accounts``)."""
    holds_change(work, accounts=accounts, hold_deltas={reservation.account_id: -reservation.amount})
    reservation_end(
        work, reservation, status=Reservation.Status.RELEASED, actor=actor, reason=reason, amount=reservation.amount
    )


def require_pending(reservation: ReservationRow) -> None:
    details = {"reservation_id": reservation.id, "status": reservation.status}
    if reservation.status == Reservation.Status.EXPIRED:
        raise ApplicationError("reservation_expired", f"reservation {reservation.id} has expired", details)
    if reservation.status != Reservation.Status.PENDING:
        raise ApplicationError(
            "reservation_not_pending", f"reservation {reservation.id} is {reservation.status}, not pending", details
        )
    if reservation.expires_at <= timezone.now():
        raise ApplicationError(
            "reservation_expired",
            f"reservation {reservation.id} has expired",
            {**details, "expires_at": format_timestamp(reservation.expires_at)},
        )


def reservation_end(
    work: Work, reservation: ReservationRow, *, status: str, actor: str, reason: str, amount: int
) -> None:
    """Queue a transition out of pending, with its audit event, in the caller's work."""
    previous, now = reservation.status, timezone.now()
    reservation.status = status
    reservation.ended_at = reservation.updated_at = now
    reservation.ended_by = actor[:128]
    reservation.end_reason = reason[:MAX_REASON]
    reservation_write(work, reservation)
    event_insert(
        work,
        reservation_id=reservation.id,
        kind=status,
        from_status=previous,
        to_status=status,
        amount=amount,
        actor=actor[:128],
        reason=reason[:MAX_REASON],
        now=now,
    )
    work.on_commit(lambda: reservation_outcome_count(status))
