"""API keys and gRPC service tokens: one credential model, one set of scopes, for every channel.

Calls authenticate with ``api_key_authenticate_call``: the database decides whenever it answers (a
revoked key is refused at once), within ``API_KEY_DB_SECONDS``. When it does not answer, a key
this process or another verified in the last ``API_KEY_OUTAGE_SECONDS`` still authenticates
(remembered in process memory and, signed with SECRET_KEY so Redis cannot mint one, in the shared
cache), the call is marked as one made during an outage (balance_project/outage.py: reads come
from the cache marked stale, writes are refused), and a key not seen in that window answers
``unavailable``, not ``unauthenticated``: it may well be valid. So a revoked key stops working
within ``API_KEY_OUTAGE_SECONDS`` in every case, and at once while the database answers.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from accounts.models import ApiKey
from balance_project import outage
from balance_project.deadlines import narrowed, time_left
from balance_project.errors import ApplicationError
from balance_project.query_budget import guarded
from balance_project.shared_cache import shared_cache

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


def api_key_authenticate_call(raw: str | None) -> ApiKey:
    """The key of a call: ``api_key_authenticate`` when the database answers, else a key verified
    in the last ``API_KEY_OUTAGE_SECONDS`` (see the module's docstring)."""
    return _authenticate(raw)[0]


def _authenticate(raw: str | None) -> tuple[ApiKey, bool]:
    """(the key, whether the database confirmed it just now)."""
    if not raw:
        raise ApplicationError("unauthenticated", "an API key is required")
    digest = _digest(raw)
    if not outage.database_down():
        try:
            with narrowed(settings.API_KEY_DB_SECONDS), guarded():
                verified = api_key_authenticate(raw)
        except ApplicationError as error:
            if error.code == "unauthenticated":
                _forget(digest)
                raise
            left = time_left()
            if error.code != "deadline_exceeded" or (left is not None and left <= 0):
                raise  # the call's own budget is spent: nothing to fall back for
            outage.note_database_unreachable("the key lookup got no answer in API_KEY_DB_SECONDS")
        except (OperationalError, InterfaceError) as exc:
            if not outage.is_connection_failure(exc):
                raise
            outage.note_database_unreachable(exc)
            _close_broken_connection()
        else:
            outage.note_database_answered()
            _remember(digest, verified)
            return verified, True
    record = _recall(digest)
    if record is None:
        raise ApplicationError(
            "unavailable",
            "the database is unavailable and this key was not verified recently; retry",
            {"retryable": True, "retry_after": 1},
        )
    outage.note_call_degraded()  # this call: stale reads, no writes
    return record, False


def _close_broken_connection() -> None:
    """So the next try connects afresh (the request cycle would too, but not every caller has one)."""
    connection = connections["default"]
    if not connection.in_atomic_block:
        try:
            connection.close()
        except Exception:
            pass


# digest -> (record, monotonic time verified, monotonic time last published to the shared cache)
_VERIFIED: dict[str, tuple[ApiKey, float, float]] = {}
_VERIFIED_MAX = 10_000
_SIGNING_SALT = "balance.api-key-verified"


def _shared_key(digest: str) -> str:
    return f"api-key-verified:v1:{digest}"


def _remember(digest: str, record: ApiKey) -> None:
    window = settings.API_KEY_OUTAGE_SECONDS
    if window <= 0:
        return
    now = time.monotonic()
    previous = _VERIFIED.get(digest)
    published = previous[2] if previous is not None else float("-inf")
    if now - published > window / 3:  # the shared copy is refreshed a few times per window, not per call
        payload = {"pk": record.pk, "client": record.client, "prefix": record.prefix, "scopes": list(record.scopes)}
        try:
            shared_cache().set(_shared_key(digest), signing.dumps(payload, salt=_SIGNING_SALT), int(window) + 1)
            published = now
        except Exception:  # the cache is a fallback of a fallback: the process copy still counts
            pass
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[digest] = (record, now, published)


def _recall(digest: str) -> ApiKey | None:
    window = settings.API_KEY_OUTAGE_SECONDS
    if window <= 0:
        return None
    local = _VERIFIED.get(digest)
    if local is not None and time.monotonic() - local[1] <= window:
        return local[0]
    try:
        signed = shared_cache().get(_shared_key(digest))
        # max_age: the signature's time is when a process verified the key against the database.
        payload = signing.loads(signed, salt=_SIGNING_SALT, max_age=timedelta(seconds=window)) if signed else None
    except signing.BadSignature:  # forged, or older than the window (SignatureExpired)
        payload = None
    except Exception:
        payload = None
    if payload is None:
        return None
    return ApiKey(
        pk=payload["pk"],
        client=payload["client"],
        prefix=payload["prefix"],
        key_hash=digest,
        scopes=payload["scopes"],
        is_active=True,
    )


def _forget(digest: str) -> None:
    """The database refused the key (revoked, or never valid): no outage may bring it back."""
    if _VERIFIED.pop(digest, None) is not None:
        try:
            shared_cache().delete(_shared_key(digest))
        except Exception:
            pass


def api_key_forget_verified() -> None:
    """Tests: start from nothing remembered in this process."""
    _VERIFIED.clear()


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
            return api_key_authenticate_call(raw)
        digest = _digest(raw)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        record, confirmed = _authenticate(raw)
        if not confirmed:  # an outage's answer is not kept: it would stretch the revocation window
            return record
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
