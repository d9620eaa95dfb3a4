"""Read-only reservation queries."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count

from balance_project.errors import ApplicationError
from reservations.models import Reservation
from reservations.results import reservation_result

RATE_PLACES = Decimal("0.0001")


def reservation_get(*, reservation_id: int) -> dict[str, Any]:
    """-> {"reservation": reservation_result}; reservation_not_found if unknown."""
    reservation = Reservation.objects.select_related("table").filter(pk=reservation_id).first()
    if reservation is None:
        raise ApplicationError(
            "reservation_not_found", f"reservation {reservation_id} does not exist", {"reservation_id": reservation_id}
        )
    return {"reservation": reservation_result(reservation)}


def reservation_expiry_rate(*, start: datetime, end: datetime) -> dict[str, Any]:
    """-> {"expired": int, "committed": int, "released": int, "rate": "0.0123" (string, no floats)}
    expired / (committed + released + expired) over reservations that ended in [start, end).
    The rate has four decimal places, rounded half up; "0.0000" when none ended."""
    if start >= end:
        raise ApplicationError(
            "invalid_request",
            "the period must start before it ends",
            {"from": start.isoformat(), "to": end.isoformat()},
        )
    counts = dict(
        Reservation.objects.filter(ended_at__gte=start, ended_at__lt=end)
        .exclude(status=Reservation.Status.PENDING)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    expired = counts.get(Reservation.Status.EXPIRED, 0)
    committed = counts.get(Reservation.Status.COMMITTED, 0)
    released = counts.get(Reservation.Status.RELEASED, 0)
    total = expired + committed + released
    rate = (Decimal(expired) / Decimal(total)).quantize(RATE_PLACES, ROUND_HALF_UP) if total else Decimal("0.0000")
    return {
        "expired": expired,
        "committed": committed,
        "released": released,
        "total": total,
        "rate": str(rate),
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
