"""Plain, JSON-safe answers of table services (what idempotency stores and every channel renders)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tables.models import Seat, Table

if TYPE_CHECKING:
    from tables.rows import SeatRow, TableRow


def seat_result(seat: Seat | SeatRow) -> dict[str, Any]:
    return {
        "id": seat.pk,
        "table_id": seat.table.table_id,
        "user_id": seat.user_id,
        "account_id": seat.account_id,
        "chips": seat.account.balance,  # type: ignore[union-attr]  # a SeatRow is rendered with its account
        "status": str(seat.status),
    }


def table_result(table: Table | TableRow, seats: Iterable[Seat | SeatRow] | None = None) -> dict[str, Any]:
    """``seats``: its active seats in id order, with their tables and accounts, when the caller has
    them already; read here otherwise."""
    if seats is None:
        # (a TableRow comes with its seats)
        seats = table.seats.filter(status=Seat.Status.ACTIVE).select_related("account", "table").order_by("pk")  # type: ignore[union-attr]
    return {
        "table_id": table.table_id,
        "currency": table.currency,
        "status": str(table.status),
        "chips": table.chips,
        "seats": [seat_result(seat) for seat in seats],
    }
