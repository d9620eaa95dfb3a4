"""Reservation rows as the lean data path reads and writes them (see ledger/rows.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.journal import JOURNALED
from ledger.work import Work, as_datetime
from tables.rows import TableRow

RESERVATION_COLUMNS = (
    "id, account_id, user_id, currency, amount, committed_amount, status, expires_at, seat_id, "
    "transaction_id, created_by, ended_at, ended_by, end_reason, created_at, updated_at"
)


@dataclass(slots=True)
class ReservationRow:
    """``table``: the row ``reservation_result`` names it with. ``written``: the row is in the
    database (or queued to be); a reservation made and ended in one work is written once, at its end."""

    id: int
    account_id: int
    user_id: str
    currency: str
    amount: int
    committed_amount: int
    status: str
    expires_at: datetime
    seat_id: int | None
    transaction_id: int | None
    created_by: str
    ended_at: datetime | None
    ended_by: str
    end_reason: str
    created_at: datetime
    updated_at: datetime
    table: TableRow | None = None
    written: bool = True

    @classmethod
    def from_db(cls, row: tuple[Any, ...], table: TableRow | None = None) -> ReservationRow:
        (
            pk,
            account_id,
            user_id,
            currency,
            amount,
            committed,
            status,
            expires_at,
            seat_id,
            transaction_id,
            created_by,
            ended_at,
            ended_by,
            end_reason,
            created_at,
            updated_at,
        ) = row
        return cls(
            int(pk),
            int(account_id),
            user_id,
            currency,
            int(amount),
            int(committed),
            status,
            as_datetime(expires_at),
            seat_id,
            transaction_id,
            created_by,
            as_datetime(ended_at),
            ended_by,
            end_reason,
            as_datetime(created_at),
            as_datetime(updated_at),
            table,
        )

    @property
    def pk(self) -> int:
        return self.id

    @property
    def released_amount(self) -> int:
        return 0 if self.status == "pending" else self.amount - self.committed_amount


def _journaled(work: Work, r: ReservationRow, table_pk: int) -> None:
    values = {column: getattr(r, column) for column, _ in JOURNALED["reservations_reservation"] if column != "table_id"}
    work.row("reservations_reservation", r.id, values | {"table_id": table_pk})


def reservation_insert(work: Work, reservation: ReservationRow, table_pk: int) -> None:
    r = reservation
    _journaled(work, r, table_pk)
    work.execute(
        "INSERT INTO reservations_reservation (id, account_id, table_id, user_id, currency, amount, committed_amount, "
        "status, expires_at, seat_id, transaction_id, created_by, ended_at, ended_by, end_reason, created_at, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            r.id,
            r.account_id,
            table_pk,
            r.user_id,
            r.currency,
            r.amount,
            r.committed_amount,
            r.status,
            work.time(r.expires_at),
            r.seat_id,
            r.transaction_id,
            r.created_by,
            work.time(r.ended_at) if r.ended_at else None,
            r.ended_by,
            r.end_reason,
            work.time(r.created_at),
            work.time(r.updated_at),
        ],
    )


def reservation_write(work: Work, reservation: ReservationRow) -> None:
    """Queue the row as it now is: an UPDATE, or the INSERT of one this work made and has not written."""
    if reservation.written:
        reservation_update(work, reservation)
        return
    if reservation.table is None:
        raise RuntimeError("a reservation is written with the table it was made at (its journal image names it)")
    reservation_insert(work, reservation, reservation.table.id)
    reservation.written = True


def reservation_update(work: Work, reservation: ReservationRow) -> None:
    r = reservation
    if r.table is None:
        raise RuntimeError("a reservation is updated with the table it was read with (its journal image names it)")
    _journaled(work, r, r.table.id)
    work.execute(
        "UPDATE reservations_reservation SET status = %s, committed_amount = %s, seat_id = %s, transaction_id = %s, "
        "ended_at = %s, ended_by = %s, end_reason = %s, updated_at = %s WHERE id = %s",
        [
            r.status,
            r.committed_amount,
            r.seat_id,
            r.transaction_id,
            work.time(r.ended_at) if r.ended_at else None,
            r.ended_by,
            r.end_reason,
            work.time(r.updated_at),
            r.id,
        ],
    )


def event_insert(
    work: Work,
    *,
    reservation_id: int,
    kind: str,
    from_status: str,
    to_status: str,
    amount: int,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    work.execute(
        "INSERT INTO reservations_reservationevent (reservation_id, kind, from_status, to_status, amount, actor, "
        "reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [reservation_id, kind, from_status, to_status, amount, actor, reason, work.time(now)],
    )
