"""Plain, JSON-safe answers of account services: what idempotency stores and every channel renders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accounts.models import Account
from ledger.chain import format_timestamp

if TYPE_CHECKING:
    from ledger.rows import AccountRow


def account_result(account: Account | AccountRow) -> dict[str, Any]:
    return {
        "id": account.pk,
        "kind": account.kind,
        "owner_ref": account.owner_ref,
        "system_code": account.system_code,
        "currency": account.currency,
        "balance": account.balance,
        "held": account.held,
        "available": account.balance - account.held,
        "status": account.status,
        "version": account.version,
    }


def transaction_result(tx) -> dict[str, Any]:
    """``tx`` just posted carries its entries (``posted_entries``): no need to read them back."""
    entries = getattr(tx, "posted_entries", None)
    entries = sorted(entries, key=lambda e: e.account_id) if entries is not None else tx.entries.order_by("account_id")
    return {
        "id": tx.pk,
        "kind": tx.kind,
        "currency": tx.currency,
        "actor": tx.actor,
        "metadata": tx.metadata,
        "created_at": format_timestamp(tx.created_at),
        "entries": [
            {"account_id": e.account_id, "seq": e.seq, "amount": e.amount, "balance_after": e.balance_after}
            for e in entries
        ],
    }
