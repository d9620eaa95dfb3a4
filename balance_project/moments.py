"""Moments given by callers (report periods, statement ranges): one rule for every channel.

Within [1970-01-01, 9000-01-01) UTC, so that a day or an hour added to one cannot leave Python's
calendar (OverflowError), and with a UTC offset below 16 hours, the most PostgreSQL takes ("time zone
displacement out of range" beyond): either way a 400, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from balance_project.errors import ApplicationError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=16)


def moment_checked(moment: datetime, *, field: str, value: Any) -> datetime:
    """``moment`` (naive means UTC) as an aware UTC datetime, or ``invalid_request`` naming ``field``."""
    offset = moment.utcoffset()
    if offset is not None and abs(offset) >= MAX_OFFSET:
        raise ApplicationError(
            "invalid_request",
            f"{field}: a UTC offset must be under 16 hours",
            {"field": field, "value": str(value)[:40]},
        )
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        inside = EARLIEST <= aware < LATEST
    except OverflowError:  # pragma: no cover - comparisons of aware datetimes normalise without overflow
        inside = False
    if not inside:
        raise ApplicationError(
            "invalid_request",
            f"{field} must be from {EARLIEST.date()} to before {LATEST.date()}",
            {"field": field, "value": str(value)[:40]},
        )
    return aware.astimezone(UTC)
