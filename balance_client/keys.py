"""Idempotency keys: ``{operation}:{tableId}:{userId}:{timestamp}``, made once per logical operation
and reused by every retry of it."""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_last_ns = 0


def unique_timestamp_ns() -> int:
    """Nanoseconds since the epoch, strictly increasing within this process, so two operations
    made in the same instant never share a key (which would make the second a replay of the first)."""
    global _last_ns
    with _lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def idempotency_key(operation: str, table_id: str = "", user_id: str = "", timestamp: int | None = None) -> str:
    """``buy_in:table-7:alice:1764045600123456789``."""
    return f"{operation}:{table_id}:{user_id}:{unique_timestamp_ns() if timestamp is None else timestamp}"
