"""Read-only table queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Sum

from accounts.models import Account
from tables.models import Seat, Table
from tables.results import table_result
from tables.seating import table_find


def table_get(*, table_id: str) -> dict[str, Any]:
    """-> {"table": table_result}; table_not_found if unknown."""
    return {"table": table_result(table_find(table_id))}


def table_chips_mismatches() -> list[dict[str, Any]]:
    """Tables whose ``chips`` differ from the sum of their seat accounts (should be none).
    -> [{"table_id", "chips", "seats_total"}]"""
    mismatches = []
    for table in Table.objects.order_by("pk"):
        seats_total = (
            Account.objects.filter(seat__in=Seat.objects.filter(table=table)).aggregate(total=Sum("balance"))["total"]
            or 0
        )
        if seats_total != table.chips:
            mismatches.append({"table_id": table.table_id, "chips": table.chips, "seats_total": seats_total})
    return mismatches
