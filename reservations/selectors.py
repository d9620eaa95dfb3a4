"""Read-only reservation queries. CONTRACT STUB: signatures fixed."""
from __future__ import annotations

from datetime import datetime
from typing import Any


def reservation_get(*, reservation_id: int) -> dict[str, Any]:
    """-> {"reservation": reservation_result}; reservation_not_found if unknown."""
    raise NotImplementedError


def reservation_expiry_rate(*, start: datetime, end: datetime) -> dict[str, Any]:
    """-> {"expired": int, "committed": int, "released": int, "rate": "0.0123" (string, no floats)}
    expired / (committed + released + expired) over reservations that ended in [start, end)."""
    raise NotImplementedError
