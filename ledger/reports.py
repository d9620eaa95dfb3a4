"""Finance reports over the ledger: read-only selectors shared by the admin, HTTP and commands.

A period is half-open, ``[start, end)``, and is cut by the *transaction's* created time, so the
entries of one transaction never fall into two periods, and the ledger export up to ``T`` sums to
the trial balance at ``T``. Every amount is an integer of minor units; nothing here produces a float.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from django.db.models import BigIntegerField, Count, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account
from balance_project.errors import ApplicationError
from balance_project.moments import moment_checked
from balance_project.money import parse_currency
from ledger.chain import format_timestamp
from ledger.csv_safety import csv_lines
from ledger.models import Entry

LEDGER_EXPORT_HEADER: tuple[str, ...] = (
    "transaction_id",
    "kind",
    "created_at",
    "account_id",
    "account_kind",
    "owner_ref",
    "system_code",
    "currency",
    "amount",
    "balance_after",
    "seq",
    "checksum",
    "metadata",
)
# Accounts whose recorded balance disagrees with their entries: at most this many are listed.
MISMATCH_LIST_LIMIT = 100
_EXPORT_CHUNK = 2000


def report_moment_parse(value: Any, *, field: str) -> datetime:
    """An aware UTC datetime from ``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 datetime (naive means
    UTC), or ``invalid_request`` naming ``field``."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.min)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if not text or moment is None:
        raise ApplicationError(
            "invalid_request",
            f"{field} must be a date (YYYY-MM-DD) or an ISO 8601 datetime",
            {"field": field, "value": str(value)[:40]},
        )
    return moment_checked(moment, field=field, value=value)


def report_period_check(*, start: datetime, end: datetime) -> None:
    if end <= start:
        raise ApplicationError(
            "invalid_request",
            "the period must end after it starts",
            {"from": format_timestamp(start), "to": format_timestamp(end)},
        )


def ledger_export_rows(*, start: datetime, end: datetime, currency: str | None = None) -> Iterator[tuple[Any, ...]]:
    """Every entry of the transactions created in ``[start, end)``, oldest transaction first, one
    tuple per entry in the order of ``LEDGER_EXPORT_HEADER``. Streams from one query (a
    server-side cursor on PostgreSQL), so the whole period is one consistent snapshot."""
    report_period_check(start=start, end=end)
    entries = Entry.objects.filter(transaction__created_at__gte=start, transaction__created_at__lt=end)
    if currency is not None:
        entries = entries.filter(currency=parse_currency(currency))
    rows = entries.order_by("transaction__created_at", "transaction_id", "account_id").values_list(
        "transaction_id",
        "transaction__kind",
        "transaction__created_at",
        "account_id",
        "account__kind",
        "account__owner_ref",
        "account__system_code",
        "currency",
        "amount",
        "balance_after",
        "seq",
        "checksum",
        "transaction__metadata",
    )
    for (
        tx_id,
        kind,
        created_at,
        account_id,
        account_kind,
        owner_ref,
        system_code,
        entry_currency,
        amount,
        balance_after,
        seq,
        checksum,
        metadata,
    ) in rows.iterator(chunk_size=_EXPORT_CHUNK):
        yield (
            tx_id,
            kind,
            format_timestamp(created_at),
            account_id,
            account_kind,
            owner_ref,
            system_code,
            entry_currency,
            amount,
            balance_after,
            seq,
            checksum,
            json.dumps(metadata or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        )


def ledger_export_csv_lines(*, start: datetime, end: datetime, currency: str | None = None) -> Iterator[str]:
    """The export as CSV text, header first, one line at a time (for a streaming response or a file).
    The period and currency are checked before the first line is produced."""
    report_period_check(start=start, end=end)
    if currency is not None:
        currency = parse_currency(currency)
    # Through csv_safety, as every CSV export: owner refs and metadata are caller text.
    return csv_lines(LEDGER_EXPORT_HEADER, ledger_export_rows(start=start, end=end, currency=currency))


def trial_balance(*, at: datetime | None = None, currency: str | None = None) -> dict[str, Any]:
    """Per currency: the ledger's totals per account kind and per house account, whether they sum to
    zero (the books balance), and whether the accounts' recorded balances agree with their entries.

    Built from the entries of transactions created before ``at`` (all of them when ``at`` is None).
    Now (``at`` None) the recorded balance is the account row's; at an earlier ``at`` it is the
    ``balance_after`` of the account's last entry before ``at``.
    """
    entries = Entry.objects.all()
    accounts = Account.objects.all()
    if currency is not None:
        currency = parse_currency(currency)
        entries = entries.filter(currency=currency)
        accounts = accounts.filter(currency=currency)
    if at is not None:
        entries = entries.filter(transaction__created_at__lt=at)

    books: dict[str, dict[str, Any]] = {}
    grouped = (
        entries.values("currency", "account__kind", "account__system_code")
        .annotate(
            total=Sum("amount"),
            accounts=Count("account", distinct=True),
            entries=Count("id"),
        )
        .order_by("currency", "account__kind", "account__system_code")
    )
    for row in grouped:
        report = books.setdefault(row["currency"], _empty_currency_report(row["currency"]))
        kind = report["kinds"].setdefault(row["account__kind"], {"accounts": 0, "entries": 0, "total": 0})
        kind["accounts"] += row["accounts"]
        kind["entries"] += row["entries"]
        kind["total"] += row["total"]
        if row["account__kind"] == Account.Kind.SYSTEM:
            report["system_accounts"][row["account__system_code"]] = row["total"]
        report["total"] += row["total"]
        report["entry_count"] += row["entries"]

    if at is None:
        for sums in accounts.values("currency").annotate(total=Sum("balance"), held=Sum("held")).order_by("currency"):
            report = books.setdefault(sums["currency"], _empty_currency_report(sums["currency"]))
            report["accounts_total"] = sums["total"]
            report["held_total"] = sums["held"]

    for report in books.values():
        report["balanced"] = report["total"] == 0 and report["accounts_total"] in (None, 0)
        mismatches, count = _recorded_balance_mismatches(accounts.filter(currency=report["currency"]), at)
        report["mismatched_accounts"] = mismatches
        report["mismatched_account_count"] = count
        report["matches_accounts"] = count == 0

    currencies = [books[code] for code in sorted(books)]
    return {
        "at": format_timestamp(at) if at is not None else None,
        "currency": currency,
        "balanced": all(r["balanced"] and r["matches_accounts"] for r in currencies),
        "currencies": currencies,
    }


def _empty_currency_report(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "kinds": {},
        "system_accounts": {},
        "total": 0,
        "entry_count": 0,
        "accounts_total": None,
        "held_total": None,
    }


def _recorded_balance_mismatches(accounts: QuerySet[Account], at: datetime | None) -> tuple[list[dict[str, Any]], int]:
    """Accounts whose entries (before ``at``) do not sum to their recorded balance."""
    own_entries = Entry.objects.filter(account=OuterRef("pk"))
    if at is not None:
        own_entries = own_entries.filter(transaction__created_at__lt=at)
    entry_sum = Subquery(own_entries.order_by().values("account").annotate(s=Sum("amount")).values("s")[:1])
    checked = accounts.annotate(ledger_balance=Coalesce(entry_sum, Value(0), output_field=BigIntegerField()))
    if at is None:
        checked = checked.annotate(recorded_balance=F("balance"))
    else:
        last_balance = Subquery(own_entries.order_by("-seq").values("balance_after")[:1])
        checked = checked.annotate(recorded_balance=Coalesce(last_balance, Value(0), output_field=BigIntegerField()))
    differing = checked.exclude(ledger_balance=F("recorded_balance")).order_by("pk")
    listed = [
        {"account_id": row["pk"], "ledger_balance": row["ledger_balance"], "recorded_balance": row["recorded_balance"]}
        for row in differing.values("pk", "ledger_balance", "recorded_balance")[:MISMATCH_LIST_LIMIT]
    ]
    count = len(listed) if len(listed) < MISMATCH_LIST_LIMIT else differing.count()
    return listed, count
