"""The player's id as callers name it: ``owner_ref`` on an account, ``user_id`` at a table. One rule
for both, since they are the same id (a wallet is found by it)."""

from __future__ import annotations

from typing import Any

from balance_project.errors import ApplicationError

MAX_USER_ID = 128


def user_id_check(value: Any, *, field: str = "user_id") -> str:
    """1 to 128 printable characters (no control characters, no NUL), surrounding spaces dropped;
    else ``invalid_request`` naming ``field`` (the refusal never repeats the value)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID or not value.isprintable():
        raise ApplicationError(
            "invalid_request", f"{field} must be 1 to {MAX_USER_ID} printable characters", {"field": field}
        )
    return value.strip()
