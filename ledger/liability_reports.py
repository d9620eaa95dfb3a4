"""Daily reports for finance and the regulator: the player liability per currency, and the activity
of every player (N.J.A.C. 13:69O-1.9). Read-only selectors shared by the commands, HTTP and admin.

A day is ``[00:00, 24:00)`` UTC, cut by the transaction's created time as in ledger/reports.py, so
a day's closing figures are the trial balance at its end and the next day's opening. Amounts are
integers of minor units; each has a ``*_decimal`` twin formatted with integer arithmetic only.
Rows stream (``.iterator()``): memory stays constant however many players there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account, PlayerLimit, ProtectionEvent
from balance_project.errors import ApplicationError
from balance_project.money import parse_currency
from ledger.chain import format_timestamp
from ledger.csv_safety import csv_lines
from ledger.models import Entry, Transaction
from reservations.models import Reservation

# ISO 4217 minor-unit exponents that are not 2; every other currency has two decimals.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0,
    "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3,
    "TND": 3,
}  # fmt: skip
REPORT_FORMATS = ("csv", "jsonl")
_CHUNK = 2000
PLAYER_KINDS = (Account.Kind.USER, Account.Kind.SEAT)


def amount_decimal(amount: int, currency: str) -> str:
    """``amount`` minor units as a decimal string (``-1234`` EUR -> ``-12.34``), by integer arithmetic."""
    exponent = _EXPONENTS.get(currency, 2)
    whole, fraction = divmod(abs(amount), 10**exponent)
    text = f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)
    return f"-{text}" if amount < 0 else text


def _decimal_cell(amount: int, currency: str) -> Decimal:
    """The decimal twin as a report cell: a ``Decimal`` built from that exact text (no float on
    the way), so the CSV writer keeps ``-12.34`` a number instead of escaping it as text that begins
    with ``-``; JSONL writes it as its string."""
    return Decimal(amount_decimal(amount, currency))


def report_day_parse(value: Any, *, field: str = "date") -> tuple[datetime, datetime]:
    """``YYYY-MM-DD`` -> the UTC day ``[start, end)``; ``invalid_request`` otherwise (never "today")."""
    try:
        day = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        day = None
    if day is None or not 1970 <= day.year <= 9000:
        raise ApplicationError("invalid_request", f"{field} must be a date, YYYY-MM-DD", {"field": field})
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def report_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str) -> Iterator[str]:
    """Rows as CSV (through ledger/csv_safety: header first, formula cells escaped) or JSONL (one
    object a line), one line at a time."""
    if fmt == "csv":
        return csv_lines(header, rows)
    if fmt == "jsonl":
        return (
            json.dumps(dict(zip(header, row, strict=True)), separators=(",", ":"), default=str) + "\n" for row in rows
        )
    raise ApplicationError("invalid_request", f"format is one of {', '.join(REPORT_FORMATS)}", {"field": "format"})


def _with_decimals(header: Sequence[str], amounts: Sequence[str]) -> tuple[str, ...]:
    return (*header, *(f"{name}_decimal" for name in amounts))


# --- player liability ----------------------------------------------------------------------------

LIABILITY_AMOUNTS = (
    "opening_wallets",
    "opening_seats",
    "opening_liability",
    "opening_holds",
    "deposits",
    "withdrawals",
    "adjustments",
    "rake",
    "other",
    "closing_wallets",
    "closing_seats",
    "closing_liability",
    "closing_holds",
)
LIABILITY_HEADER = _with_decimals(("date", "currency", *LIABILITY_AMOUNTS), LIABILITY_AMOUNTS)


def liability_rows(*, start: datetime, end: datetime, currency: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Per currency: what the operator owes players at the day's start and end (wallets, which
    include their holds, shown apart too, plus the chips on their seats), and the day's movements that explain the
    change: deposits (+), withdrawals (-), adjustments (either sign), rake (-: what hands moved from
    seats to the house), and ``other`` (buy-ins, cash-outs and transfers move money between players:
    zero unless something is wrong). opening + movements = closing, always."""
    if currency is not None:
        currency = parse_currency(currency)
    entries = Entry.objects.filter(account__kind__in=PLAYER_KINDS)
    if currency is not None:
        entries = entries.filter(currency=currency)
    opening = _sums_by(entries.filter(transaction__created_at__lt=start), "account__kind")
    closing = _sums_by(entries.filter(transaction__created_at__lt=end), "account__kind")
    moved = _sums_by(
        entries.filter(transaction__created_at__gte=start, transaction__created_at__lt=end), "transaction__kind"
    )
    holds, opening_holds = _holds_at(end, currency), _holds_at(start, currency)
    currencies = sorted({c for c, _ in opening} | {c for c, _ in closing} | {c for c, _ in moved} | set(holds))
    named: dict[str, str] = {Transaction.Kind.DEPOSIT: "deposits", Transaction.Kind.WITHDRAWAL: "withdrawals",
             Transaction.Kind.ADJUSTMENT: "adjustments", Transaction.Kind.HAND_SETTLEMENT: "rake"}  # fmt: skip
    for code in currencies:
        figures = dict.fromkeys(LIABILITY_AMOUNTS, 0)
        figures["opening_wallets"] = opening.get((code, Account.Kind.USER), 0)
        figures["opening_seats"] = opening.get((code, Account.Kind.SEAT), 0)
        figures["closing_wallets"] = closing.get((code, Account.Kind.USER), 0)
        figures["closing_seats"] = closing.get((code, Account.Kind.SEAT), 0)
        for (moved_currency, kind), total in moved.items():
            if moved_currency == code:
                figures[named.get(kind, "other")] += total
        figures["opening_liability"] = figures["opening_wallets"] + figures["opening_seats"]
        figures["closing_liability"] = figures["closing_wallets"] + figures["closing_seats"]
        figures["opening_holds"] = opening_holds.get(code, 0)
        figures["closing_holds"] = holds.get(code, 0)
        amounts = [figures[name] for name in LIABILITY_AMOUNTS]
        yield (start.date().isoformat(), code, *amounts, *(_decimal_cell(a, code) for a in amounts))


def _sums_by(entries: Any, field: str) -> dict[tuple[str, str], int]:
    grouped = entries.values("currency", field).annotate(total=Sum("amount")).order_by("currency", field)
    return {(row["currency"], row[field]): int(row["total"]) for row in grouped}


def _holds_at(moment: datetime, currency: str | None) -> dict[str, int]:
    """Every hold open at ``moment``: the reservations made before it and not ended by then."""
    open_then = Reservation.objects.filter(created_at__lt=moment).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=moment)
    )
    if currency is not None:
        open_then = open_then.filter(account__currency=currency)
    grouped = open_then.values("account__currency").annotate(total=Sum("amount")).order_by("account__currency")
    return {row["account__currency"]: int(row["total"]) for row in grouped}


# --- daily activity per player (N.J.A.C. 13:69O-1.9) ---------------------------------------------

ACTIVITY_AMOUNTS = (
    "beginning_balance",
    "deposits",
    "withdrawals",
    "to_games",
    "from_games",
    "transfers_in",
    "transfers_out",
    "adjustments",
    "ending_balance",
    "on_game_start",
    "on_game_end",
)
ACTIVITY_HEADER = _with_decimals(("date", "owner_ref", "account_id", "currency", *ACTIVITY_AMOUNTS), ACTIVITY_AMOUNTS)


def activity_rows(*, start: datetime, end: datetime, currency: str | None = None) -> Iterator[tuple[Any, ...]]:
    """One row per player wallet that existed by the day's end, with or without activity: the
    wallet's balance at the start and end, the day's deposits, withdrawals, buy-ins (to games),
    cash-outs (from games), transfers in and out and adjustments, and the chips on the player's
    seats (funds on game) at the start and end. Amounts are positive except adjustments (signed);
    beginning + deposits - withdrawals - to_games + from_games + transfers_in - transfers_out +
    adjustments = ending. One query, streamed."""
    wallets = Account.objects.filter(kind=Account.Kind.USER, created_at__lt=end)
    if currency is not None:
        wallets = wallets.filter(currency=parse_currency(currency))
    own = Entry.objects.filter(account=OuterRef("pk"))
    day = own.filter(transaction__created_at__gte=start, transaction__created_at__lt=end)
    seats = Entry.objects.filter(
        account__kind=Account.Kind.SEAT, account__owner_ref=OuterRef("owner_ref"), currency=OuterRef("currency")
    )
    columns = {
        "beginning_balance": _total(own.filter(transaction__created_at__lt=start)),
        "deposits": _total(day.filter(transaction__kind=Transaction.Kind.DEPOSIT)),
        "withdrawals": _total(day.filter(transaction__kind=Transaction.Kind.WITHDRAWAL), negate=True),
        "to_games": _total(day.filter(transaction__kind=Transaction.Kind.BUY_IN), negate=True),
        "from_games": _total(day.filter(transaction__kind=Transaction.Kind.CASH_OUT)),
        "transfers_in": _total(day.filter(transaction__kind=Transaction.Kind.TRANSFER, amount__gt=0)),
        "transfers_out": _total(day.filter(transaction__kind=Transaction.Kind.TRANSFER, amount__lt=0), negate=True),
        "adjustments": _total(day.filter(transaction__kind=Transaction.Kind.ADJUSTMENT)),
        "ending_balance": _total(own.filter(transaction__created_at__lt=end)),
        "on_game_start": _total(seats.filter(transaction__created_at__lt=start)),
        "on_game_end": _total(seats.filter(transaction__created_at__lt=end)),
    }
    rows = (
        wallets.annotate(**{f"r_{name}": expression for name, expression in columns.items()})
        .order_by("currency", "owner_ref")
        .values_list("owner_ref", "id", "currency", *(f"r_{name}" for name in ACTIVITY_AMOUNTS))
    )
    day_text = start.date().isoformat()
    for owner_ref, account_id, code, *amounts in rows.iterator(chunk_size=_CHUNK):
        yield (day_text, owner_ref, account_id, code, *amounts, *(_decimal_cell(a, code) for a in amounts))


def _total(entries: Any, *, negate: bool = False) -> Any:
    """The sum of ``entries``' amounts as a subquery (0 when there are none)."""
    total = Subquery(entries.order_by().values("currency").annotate(s=Sum("amount")).values("s")[:1])
    expression = Coalesce(total, Value(0), output_field=BigIntegerField())
    return -expression if negate else expression


def report_name_check(value: Any) -> str:
    if value not in REPORTS:
        raise ApplicationError("invalid_request", f"report is one of {', '.join(REPORTS)}", {"field": "report"})
    return str(value)


def report_stream(*, report: str, day: str, fmt: str, currency: str | None = None) -> Iterator[str]:
    """The named report of the UTC day ``day`` as lines of ``fmt``: everything is checked before
    the first line."""
    report = report_name_check(report)
    start, end = report_day_parse(day)
    if fmt not in REPORT_FORMATS:
        raise ApplicationError("invalid_request", f"format is one of {', '.join(REPORT_FORMATS)}", {"field": "format"})
    if currency is not None:
        currency = parse_currency(currency)
    header, rows = REPORTS[report]
    return report_lines(header, rows(start=start, end=end, currency=currency), fmt)


# --- limits and exclusions audit ------------------------------------------------------------------

AUDIT_HEADER = (
    "created_at",
    "owner_ref",
    "currency",
    "action",
    "kind",
    "period",
    "old_value",
    "new_value",
    "effective_at",
    "actor",
    "old_value_decimal",
    "new_value_decimal",
)


def protection_audit_rows(*, start: datetime, end: datetime, currency: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Every limit change and exclusion started in ``[start, end)``, oldest first: who, when, what,
    from what to what, and when it applies (an exclusion: when it ends; its ``new_value`` is its
    length in days). Limit values are minor units; exclusions have no currency."""
    events = ProtectionEvent.objects.filter(created_at__gte=start, created_at__lt=end)
    if currency is not None:
        events = events.filter(Q(currency=currency) | Q(currency=""))
    rows = events.order_by("created_at", "id").values_list(
        "created_at", "owner_ref", "currency", "action", "kind", "period", "old_value", "new_value", "effective_at",
        "actor",
    )  # fmt: skip
    limit_kinds = set(PlayerLimit.Kind.values)
    for created_at, owner_ref, code, action, kind, period, old, new, effective_at, actor in rows.iterator(
        chunk_size=_CHUNK
    ):
        money = kind in limit_kinds
        yield (
            format_timestamp(created_at),
            owner_ref,
            code,
            action,
            kind,
            period,
            old,
            new,
            format_timestamp(effective_at),
            actor,
            _decimal_cell(old, code) if money and old is not None else None,
            _decimal_cell(new, code) if money and new is not None else None,
        )


REPORTS: dict[str, tuple[Sequence[str], Any]] = {
    "player-liability": (LIABILITY_HEADER, liability_rows),
    "player-activity": (ACTIVITY_HEADER, activity_rows),
    "protection-audit": (AUDIT_HEADER, protection_audit_rows),
}
