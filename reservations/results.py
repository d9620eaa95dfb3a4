"""Plain, JSON-safe answers of reservation services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.chain import format_timestamp
from reservations.models import Reservation

if TYPE_CHECKING:
    from reservations.rows import ReservationRow


def reservation_result(reservation: Reservation | ReservationRow) -> dict[str, Any]:
    return {
        "id": reservation.pk,
        "account_id": reservation.account_id,
        "user_id": reservation.user_id,
        "table_id": reservation.table.table_id,  # type: ignore[union-attr]  # a ReservationRow comes with its table
        "currency": reservation.currency,
        "amount": reservation.amount,
        "committed_amount": reservation.committed_amount,
        "released_amount": reservation.released_amount,
        "status": str(reservation.status),
        "expires_at": format_timestamp(reservation.expires_at),
        "created_at": format_timestamp(reservation.created_at),
        "updated_at": format_timestamp(reservation.updated_at),
        "ended_at": format_timestamp(reservation.ended_at) if reservation.ended_at else None,
        "ended_by": reservation.ended_by,
        "end_reason": reservation.end_reason,
        "seat_id": reservation.seat_id,
        "transaction_id": reservation.transaction_id,
    }
