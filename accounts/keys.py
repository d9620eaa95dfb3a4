"""API keys and gRPC service tokens: one credential model, one set of scopes, for every channel."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from django.utils import timezone

from accounts.models import ApiKey
from balance_project.errors import ApplicationError

# Every scope a key can carry, and what it allows.
SCOPES: dict[str, str] = {
    "accounts:read": "read accounts, balances, history and statements",
    "accounts:write": "open, freeze, unfreeze and close accounts",
    "payments:write": "deposit and withdraw",
    "transfers:write": "transfer between wallets",
    "ledger:read": "ledger reports: trial balance, exports, verification results",
    "reservations:write": "reserve, commit and release buy-in holds",
    "tables:write": "buy in, settle hands, cash out, open and close tables",
    "protection:write": "set a player's limits, start a self-exclusion or time-out",
    "finance:read": "finance reports: player liability, daily player activity, limits and exclusions audit",
}
KEY_PREFIX = "bal_"


def api_key_create(*, client: str, scopes: list[str]) -> tuple[str, ApiKey]:
    """Create a key for ``client`` and return (the key, shown once, and its record)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApplicationError(
            "invalid_request", f"unknown scopes: {', '.join(unknown)}", {"unknown": unknown, "known": sorted(SCOPES)}
        )
    if not client or len(client) > 64:
        raise ApplicationError("invalid_request", "client must be 1 to 64 characters", {"field": "client"})
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey.objects.create(client=client, prefix=prefix, key_hash=_digest(raw), scopes=sorted(set(scopes)))
    return raw, record


def api_key_authenticate(raw: str | None) -> ApiKey:
    """The active key matching ``raw``, or ``unauthenticated``."""
    if not raw:
        raise ApplicationError("unauthenticated", "an API key is required")
    record = ApiKey.objects.filter(key_hash=_digest(raw), is_active=True).first()
    if record is None:
        raise ApplicationError("unauthenticated", "the API key is not valid")
    now = timezone.now()
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=record.pk).update(last_used_at=now)
    return record


class ApiKeyCache:
    """Keys authenticated in the last ``seconds``, kept in this process's memory, by key hash.

    For the gRPC sidecar's hot path: a cached key costs no database lookup. The price, documented
    in docs/grpc.md: a key revoked (``is_active`` cleared) or whose scopes change keeps working in a
    process that cached it for at most ``seconds`` more. Refusals are never cached, so a new key
    works at once. ``seconds`` <= 0 turns the cache off (every call reads the database).
    """

    MAX_ENTRIES = 1024

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._entries: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, raw: str | None) -> ApiKey:
        if self.seconds <= 0 or not raw:
            return api_key_authenticate(raw)
        digest = _digest(raw)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        record = api_key_authenticate(raw)
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (record, now + self.seconds)
        return record

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def api_key_require(record: ApiKey, scope: str) -> None:
    if scope not in record.scopes:
        raise ApplicationError(
            "permission_denied", f"this key lacks the scope {scope}", {"required_scope": scope, "client": record.client}
        )


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
