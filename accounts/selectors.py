"""Read-only account queries. CONTRACT STUB: signatures fixed (HTTP and gRPC both use them)."""
from __future__ import annotations

from typing import Any


def account_balance_get(*, account_id: int) -> dict[str, Any]:
    """account_result plus {"source": "cache" | "database"}; served from the balance cache when it
    holds the account, else the database (and the cache is filled)."""
    raise NotImplementedError


def wallet_balance_get(*, user_id: str, currency: str) -> dict[str, Any]:
    """The same for the user's wallet in ``currency`` (account_not_found if none)."""
    raise NotImplementedError


def account_transactions_list(*, account_id: int, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Newest first. -> {"items": [entry_result...], "next_cursor": str | None}; entry_result =
    {"transaction_id", "kind", "seq", "amount", "balance_after", "created_at", "metadata"}"""
    raise NotImplementedError
