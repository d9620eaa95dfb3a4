"""Read-only account queries, shared by HTTP and gRPC. Nothing here locks or moves money."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.cache import balance_cache_get, balance_cache_put, balance_cached
from accounts.identifiers import user_id_check
from accounts.models import Account
from accounts.results import account_result
from balance_project import outage
from balance_project.errors import ApplicationError
from balance_project.money import INT64_MAX, parse_currency
from balance_project.shared_cache import shared_cache
from ledger.chain import format_timestamp
from ledger.models import Entry

TRANSACTIONS_MAX_LIMIT = 200
STATEMENT_MAX_ENTRIES = 1000
_CURSOR_VERSION = "e1"
# A wallet's id never changes (one per owner and currency, never deleted): remembering it in the
# process spares a cached GetBalance its only database query.
_WALLET_IDS: dict[tuple[str, str], int] = {}
_WALLET_IDS_MAX = 100_000


def account_get(*, account_id: int) -> dict[str, Any]:
    """-> {"account": account_result}, read from the database (never the cache)."""
    return {"account": account_result(_account(account_id))}


def accounts_list_by_owner(*, owner_ref: str, kind: str | None = None) -> dict[str, Any]:
    """-> {"items": [account_result...]}: every account of ``owner_ref`` (wallets and seats), by id."""
    owner_ref = user_id_check(owner_ref, field="owner_ref")
    accounts = Account.objects.filter(owner_ref=owner_ref).exclude(kind=Account.Kind.SYSTEM)
    if kind is not None:
        if kind not in (Account.Kind.USER, Account.Kind.SEAT):
            raise ApplicationError("invalid_request", "kind must be user or seat", {"field": "kind"})
        accounts = accounts.filter(kind=kind)
    return {"items": [account_result(account) for account in accounts.order_by("pk")]}


def account_balance_get(*, account_id: int) -> dict[str, Any]:
    """account_result plus {"source": "cache" | "database"}; served from the balance cache when it
    holds the account (wallets only: accounts/cache.py), else the database (and a wallet's is cached).

    While the database does not answer (balance_project/outage.py) a cached balance is still
    served, marked stale (the call's outage state: a header or trailing metadata says so); an
    account the cache does not hold answers ``unavailable`` at once."""
    if _balance_cache_shared():
        cached = balance_cache_get(account_id)
        # A seat's or house account's balance is not refreshed there after postings (only wallets
        # are cached), so one found there (written before that rule) is not read.
        if cached is not None and balance_cached(cached.get("kind", "")):
            if outage.database_down():
                outage.mark_stale()
            return {**cached, "source": "cache"}
    if outage.database_down():
        raise outage.database_unavailable()
    data = account_result(_account(account_id))
    if _balance_cache_shared() and balance_cached(data["kind"]):
        # Put only replaces an older version, so a slow reader cannot undo a newer posting's value.
        # After commit: a read inside a transaction that then rolls back must not cache what it saw.
        transaction.on_commit(lambda: balance_cache_put(data))
    return {**data, "source": "database"}


def wallet_balance_get(*, user_id: str, currency: str) -> dict[str, Any]:
    """The same for the user's wallet in ``currency`` (account_not_found if none)."""
    user_id = user_id_check(user_id)
    currency = parse_currency(currency)
    account_id = _WALLET_IDS.get((user_id, currency))
    if account_id is not None:
        try:
            found = account_balance_get(account_id=account_id)
        except ApplicationError as error:
            if error.spec.retryable:  # the database is down or slow, not the wallet gone
                raise
            found = None
        if found is not None and (found["kind"], found["owner_ref"], found["currency"]) == (
            Account.Kind.USER,
            user_id,
            currency,
        ):
            return found
        _WALLET_IDS.pop((user_id, currency), None)  # not that wallet any more (a test database reset)
    account_id = (
        Account.objects.filter(kind=Account.Kind.USER, owner_ref=user_id, currency=currency)
        .values_list("pk", flat=True)
        .first()
    )
    if account_id is None:
        raise ApplicationError(
            "account_not_found", f"{user_id} has no {currency} wallet", {"user_id": user_id, "currency": currency}
        )
    if len(_WALLET_IDS) >= _WALLET_IDS_MAX:
        _WALLET_IDS.clear()
    _WALLET_IDS[(user_id, currency)] = account_id
    return account_balance_get(account_id=account_id)


def account_transactions_list(*, account_id: int, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Newest first. -> {"items": [entry_result...], "next_cursor": str | None}; entry_result =
    {"transaction_id", "kind", "seq", "amount", "balance_after", "created_at", "metadata"}

    Pages are cut by the account's gap-free entry sequence, so entries posted while a client walks
    the pages land before its first page and never shift or repeat the later ones.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= TRANSACTIONS_MAX_LIMIT:
        raise ApplicationError(
            "invalid_request", f"limit must be an integer from 1 to {TRANSACTIONS_MAX_LIMIT}", {"field": "limit"}
        )
    _account(account_id)
    entries = Entry.objects.filter(account_id=account_id)
    if cursor:
        entries = entries.filter(seq__lt=_cursor_decode(cursor, account_id=account_id))
    page = list(entries.select_related("transaction").order_by("-seq")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [entry_result(entry) for entry in page],
        "next_cursor": _cursor_encode(account_id, page[-1].seq) if more else None,
    }


def account_statement(*, account_id: int, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """The account's movements in [start, end): opening and closing balance, totals in and out,
    and the entries (oldest first, at most STATEMENT_MAX_ENTRIES; ``truncated`` says when more).

    ``opening_balance + total_in - total_out == closing_balance``. No start means from the first
    entry; no end means now.
    """
    end = end or timezone.now()
    if start is not None and start >= end:
        raise ApplicationError("invalid_request", "from must be before to", {"field": "from"})
    account = _account(account_id)
    entries = Entry.objects.filter(account_id=account_id)
    before_end = entries.filter(created_at__lt=end)
    period = before_end.filter(created_at__gte=start) if start is not None else before_end
    opening = _balance_after_last(entries.filter(created_at__lt=start)) if start is not None else 0
    totals = period.aggregate(
        total_in=Sum("amount", filter=Q(amount__gt=0)), total_out=Sum("amount", filter=Q(amount__lt=0))
    )
    listed = list(period.select_related("transaction").order_by("seq")[: STATEMENT_MAX_ENTRIES + 1])
    count = period.count() if len(listed) > STATEMENT_MAX_ENTRIES else len(listed)
    return {
        "account": account_result(account),
        "from": format_timestamp(start) if start is not None else None,
        "to": format_timestamp(end),
        "opening_balance": opening,
        "closing_balance": _balance_after_last(before_end) if count else opening,
        "total_in": totals["total_in"] or 0,
        "total_out": -(totals["total_out"] or 0),
        "entry_count": count,
        "entries": [entry_result(entry) for entry in listed[:STATEMENT_MAX_ENTRIES]],
        "truncated": len(listed) > STATEMENT_MAX_ENTRIES,
    }


def entry_result(entry: Entry) -> dict[str, Any]:
    return {
        "transaction_id": entry.transaction_id,
        "kind": entry.transaction.kind,
        "seq": entry.seq,
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "created_at": format_timestamp(entry.created_at),
        "metadata": entry.transaction.metadata,
    }


def _account(account_id: int) -> Account:
    if outage.database_down():  # not a connect timeout per read while the database is down
        raise outage.database_unavailable()
    account = None
    if isinstance(account_id, int) and not isinstance(account_id, bool) and 0 < account_id <= INT64_MAX:
        account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise ApplicationError("account_not_found", f"account {account_id} does not exist", {"account_id": account_id})
    return account


def _balance_after_last(entries) -> int:
    last = entries.order_by("-seq").values_list("balance_after", flat=True).first()
    return last or 0


def _balance_cache_shared() -> bool:
    """A per-process memory cache is not a balance cache: another process (the gRPC server, another
    worker) posts without touching it, so it would serve stale balances. Only a shared one counts."""
    return not isinstance(shared_cache(), LocMemCache)


def _cursor_encode(account_id: int, seq: int) -> str:
    raw = f"{_CURSOR_VERSION}:{account_id}:{seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str, *, account_id: int) -> int:
    """The sequence number the next page starts below. A cursor is bound to its account."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, owner, seq = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        if version != _CURSOR_VERSION or int(owner) != account_id or not 1 <= int(seq) <= INT64_MAX:
            raise ValueError(cursor)
        return int(seq)
    except (ValueError, UnicodeError, binascii.Error):
        raise ApplicationError(
            "invalid_request", "the cursor is not valid for this account", {"field": "cursor"}
        ) from None
