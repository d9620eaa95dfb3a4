"""Amounts: integers in minor units, checked once at every boundary."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from balance_project.errors import ApplicationError

INT64_MAX = 2**63 - 1
CURRENCY_PATTERN = "^[A-Z]{3}$"
CURRENCY_RE = re.compile(CURRENCY_PATTERN)
# An amount given as text is canonical digits: no sign, no spaces, no leading zero (" 5 ", "0005" and
# "-0" are refused, as the OpenAPI schema says).
AMOUNT_TEXT_PATTERN = "^(0|[1-9][0-9]{0,18})$"
_DIGITS_RE = re.compile(AMOUNT_TEXT_PATTERN)


def amount_max(currency: str | None = None) -> int:
    """The largest amount one call may move or hold in ``currency`` (settings.MAX_AMOUNT, lowered or
    raised per currency by settings.MAX_AMOUNT_BY_CURRENCY); with no currency, the largest of all,
    which is what input is checked against before its currency is known."""
    by_currency: dict[str, int] = settings.MAX_AMOUNT_BY_CURRENCY
    if currency is None:
        return max([settings.MAX_AMOUNT, *by_currency.values()])
    return by_currency.get(currency, settings.MAX_AMOUNT)


def amount_max_check(amount: int, currency: str, *, field: str = "amount") -> None:
    """``invalid_amount`` when one leg or hold of ``amount`` (either sign) is over the currency's maximum."""
    limit = amount_max(currency)
    if abs(amount) > limit:
        raise ApplicationError(
            "invalid_amount",
            f"{field} is over the maximum of {limit} minor units for {currency}",
            {"field": field, "max": limit, "currency": currency},
        )


def parse_amount(value: Any, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Return ``value`` as a positive int64, or raise ``invalid_amount``.

    Accepts a JSON integer or a string of canonical digits. Refuses bools, floats (even 10.0),
    decimals, garbage, zero (unless ``allow_zero``), negatives and anything over ``amount_max()``
    (each currency's own maximum is checked where the currency is known: ledger.services).
    """
    if isinstance(value, bool):
        raise _invalid(field, value, "must be an integer number of minor units, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        number = int(value)
    else:
        raise _invalid(field, value, "must be an integer number of minor units")
    if number < 0 or (number == 0 and not allow_zero):
        raise _invalid(field, value, "must be greater than zero" if not allow_zero else "must not be negative")
    if number > amount_max():
        raise _invalid(field, value, f"is over the maximum of {amount_max()} minor units")
    return number


def parse_currency(value: Any, *, field: str = "currency") -> str:
    if not isinstance(value, str) or not CURRENCY_RE.fullmatch(value):
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


def amount_or_all(amount: Any, whole: Any, *, field: str = "amount") -> int | None:
    """The amount a call names, or None when it asks for everything with ``all: true``: one of the
    two, never neither (a missing amount never means "all"), never both."""
    if not isinstance(whole, bool):
        raise ApplicationError("invalid_request", "all must be true or false", {"field": "all"})
    if whole and amount is not None:
        raise ApplicationError("invalid_request", f"give {field} or all: true, not both", {"field": field})
    if not whole and amount is None:
        raise ApplicationError("invalid_request", f"name the {field}, or all: true for everything", {"field": field})
    return None if whole else parse_amount(amount, field=field)
