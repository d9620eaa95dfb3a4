"""Amounts: integers in minor units, checked once at every boundary."""

from __future__ import annotations

import re
from typing import Any

from balance_project.errors import ApplicationError

INT64_MAX = 2**63 - 1
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_DIGITS_RE = re.compile(r"^-?[0-9]{1,19}$")


def parse_amount(value: Any, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Return ``value`` as a positive int64, or raise ``invalid_amount``.

    Accepts a JSON integer or a string of digits. Refuses bools, floats (even 10.0), decimals,
    garbage, zero (unless ``allow_zero``), negatives and anything beyond int64.
    """
    if isinstance(value, bool):
        raise _invalid(field, value, "must be an integer number of minor units, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS_RE.match(value.strip()):
        number = int(value.strip())
    else:
        raise _invalid(field, value, "must be an integer number of minor units")
    if number < 0 or (number == 0 and not allow_zero):
        raise _invalid(field, value, "must be greater than zero" if not allow_zero else "must not be negative")
    if number > INT64_MAX:
        raise _invalid(field, value, "is larger than a 64-bit integer")
    return number


def parse_currency(value: Any, *, field: str = "currency") -> str:
    if not isinstance(value, str) or not CURRENCY_RE.match(value):
        raise ApplicationError(
            "invalid_request",
            f"{field} must be a three-letter upper-case code such as EUR",
            {"field": field},
        )
    return value


def _invalid(field: str, value: Any, why: str) -> ApplicationError:
    shown = value if isinstance(value, (int, str)) and not isinstance(value, bool) else repr(value)
    if isinstance(shown, str) and len(shown) > 40:
        shown = shown[:40] + "..."
    return ApplicationError("invalid_amount", f"{field} {why}", {"field": field, "value": shown})
