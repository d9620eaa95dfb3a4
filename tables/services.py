"""Tables, seats, buy-ins, hand settlement, cash-out. CONTRACT STUB: the signatures below are
fixed (the gRPC sidecar codes against them); the bodies are to be written.

seat_result dict: {"id": int, "table_id": str, "user_id": str, "account_id": int, "chips": int,
  "status": "active|left"}
table_result dict: {"table_id": str, "currency": str, "status": "open|closed", "chips": int,
  "seats": [seat_result, ...]}
"""
from __future__ import annotations

from typing import Any


def table_open(*, client: str, idempotency_key: str, table_id: str, currency: str) -> dict[str, Any]:
    """-> {"table": table_result}"""
    raise NotImplementedError


def table_close(*, client: str, idempotency_key: str, table_id: str) -> dict[str, Any]:
    """Refused (table_not_empty) unless every seat is at zero. -> {"table": table_result}"""
    raise NotImplementedError


def table_buy_in(*, client: str, idempotency_key: str, user_id: str, table_id: str, amount: Any,
                 ttl_seconds: int | None = None) -> dict[str, Any]:
    """Reserve and commit in one call. -> {"reservation": ..., "seat": ..., "transaction": ...}"""
    raise NotImplementedError


def hand_settle(*, client: str, idempotency_key: str, table_id: str, hand_id: str,
                contributions: dict[str, Any], payouts: dict[str, Any], rake: Any) -> dict[str, Any]:
    """Settle one hand atomically; idempotent by (table, hand id) as well as by key.
    -> {"hand_id": str, "table": table_result, "transaction": transaction_result | None}"""
    raise NotImplementedError


def seat_cash_out(*, client: str, idempotency_key: str, table_id: str, user_id: str,
                  amount: Any | None = None, leave: bool = False) -> dict[str, Any]:
    """Move ``amount`` (default all) of the seat's chips back to the wallet; ``leave`` cashes out
    everything and closes the seat. -> {"seat": ..., "transaction": transaction_result | None,
    "account": account_result}"""
    raise NotImplementedError
