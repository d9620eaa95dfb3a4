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
# What a moment looks like, for the OpenAPI schema: a date, or a date and time with an optional UTC
# offset. Whether it names a real day within the range above is checked by the parser.
MOMENT_SCHEMA = {
    "type": "string",
    "maxLength": 64,
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$",
    "description": "YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime, from 1970 to 9000, UTC offset under 16 h.",
}


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
