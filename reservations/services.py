"""Two-phase buy-in holds. CONTRACT STUB: the signatures below are fixed (the gRPC sidecar codes
against them); the bodies are to be written.

Every function returns a JSON-safe dict (what idempotency stores and every channel renders) and
raises ``ApplicationError`` with codes from balance_project/errors.py.

reservation_result dict: {"id": int, "account_id": int, "user_id": str, "table_id": str,
  "currency": str, "amount": int, "committed_amount": int, "status": "pending|committed|released|expired",
  "expires_at": iso str, "created_at": iso str, "updated_at": iso str}
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


def reservation_reserve(*, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any,
                        ttl_seconds: int | None = None) -> dict[str, Any]:
    """Hold ``amount`` on the user's wallet in the table's currency. -> {"reservation": ...}"""
    raise NotImplementedError


def reservation_commit(*, client: str, idempotency_key: str, reservation_id: int,
                       amount: Any | None = None) -> dict[str, Any]:
    """Commit all (or ``amount`` <= held) into the player's seat at the reservation's table; the
    rest is released. -> {"reservation": ..., "seat": seat_result, "transaction": transaction_result}"""
    raise NotImplementedError


def reservation_release(*, client: str, idempotency_key: str, reservation_id: int,
                        reason: str = "") -> dict[str, Any]:
    """Drop the hold. -> {"reservation": ...}"""
    raise NotImplementedError


def reservation_expire_overdue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire pending reservations past their expiry; returns how many. (The Celery job calls it.)"""
    raise NotImplementedError
