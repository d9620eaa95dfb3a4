"""Balance cache. Written after commit, keyed by account, and only ever replaced by a newer
version, so two commits whose callbacks run out of order cannot leave the older one cached.

Nothing that moves money reads from here: postings read the locked row.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from balance_project import redis_breaker
from balance_project.shared_cache import shared_cache

log = logging.getLogger(__name__)

_LOCAL_LOCK = threading.Lock()

# KEYS[1] = cache key, ARGV[1] = version, ARGV[2] = JSON payload, ARGV[3] = ttl seconds.
_SET_IF_NEWER_LUA = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and decoded['version'] and tonumber(decoded['version']) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


def _key(account_id: int) -> str:
    return f"account-balance:v1:{account_id}"


def _redis_client():
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is a dependency
        return None
    backend = shared_cache()
    if not isinstance(backend, RedisCache):
        return None
    return backend.client.get_client(write=True)


def balance_cache_get(account_id: int) -> dict[str, Any] | None:
    client = _redis_client()
    if not redis_breaker.cache_trusted():
        # Redis failed since the cache was last emptied, so it may hold older balances: the database
        # answers. A ping (when the breaker lets one through) starts the recovery that empties it.
        if client is not None and not redis_breaker.is_open():
            try:
                client.ping()
            except Exception:
                log.debug("Redis still does not answer", exc_info=True)
        return None
    try:
        if client is not None:
            raw = client.get(shared_cache().make_key(_key(account_id)))
            return json.loads(raw) if raw else None
        return shared_cache().get(_key(account_id))
    except Exception:  # Redis down or garbage: the database answers instead.
        log.warning("balance cache read failed for account %s", account_id, exc_info=True)
        return None


def balance_cache_put(data: dict[str, Any]) -> None:
    """Store ``data`` unless the cache already holds the same or a newer version."""
    balance_cache_put_many([data])


def balance_cache_put_many(rows: list[dict[str, Any]]) -> None:
    """``balance_cache_put`` of each row, in one Redis round trip."""
    from django.conf import settings

    ttl = settings.BALANCE_CACHE_TTL_SECONDS
    client = _redis_client()
    try:
        if client is not None:
            backend = shared_cache()
            pipe = client.pipeline(transaction=False)
            for data in rows:
                pipe.eval(
                    _SET_IF_NEWER_LUA, 1, backend.make_key(_key(data["id"])), data["version"], json.dumps(data), ttl
                )
            pipe.execute()
            return
        with _LOCAL_LOCK:
            for data in rows:
                current = shared_cache().get(_key(data["id"]))
                if current is None or current["version"] < data["version"]:
                    shared_cache().set(_key(data["id"]), data, ttl)
    except Exception:
        log.warning("balance cache write failed for accounts %s", [data.get("id") for data in rows], exc_info=True)
        for data in rows:
            balance_cache_forget(data["id"])


def balance_cache_forget_all() -> None:
    """Drop every cached balance (redis_breaker's recovery hook): after Redis missed writes, or came
    back from an older snapshot, any of them may be older than the database."""
    client = _redis_client()
    if client is None:
        return
    pattern = shared_cache().make_key(_key(0)).removesuffix("0") + "*"
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


redis_breaker.on_recovery(balance_cache_forget_all)


def balance_cache_forget(account_id: int) -> None:
    try:
        shared_cache().delete(_key(account_id))
    except Exception:
        log.warning("balance cache delete failed for account %s", account_id, exc_info=True)


class CacheWrites:
    """The cache writes of one committed transaction, sent together in one Redis round trip: the
    balances of the accounts it changed (each only over an older version) and plain values such as
    its idempotency answer. Collect them with ``cache_writes_after_commit``."""

    def __init__(self) -> None:
        self.accounts: dict[int, Any] = {}  # id -> the row as it stands at commit
        self.values: list[tuple[str, Any, int]] = []  # (cache key, value, ttl seconds)

    def flush(self) -> None:
        from accounts.results import account_result

        rows = [account_result(account) for account in self.accounts.values()]
        client = _redis_client()
        if client is None:  # a local-memory cache: one call each
            for key, value, ttl in self.values:
                _set_quietly(key, value, ttl)
            if rows:
                balance_cache_put_many(rows)
            return
        from django.conf import settings

        try:
            backend = shared_cache()
            pipe = client.pipeline(transaction=False)
            for key, value, ttl in self.values:
                pipe.set(backend.make_key(key), backend.client.encode(value), ex=ttl)  # type: ignore[attr-defined]  # django_redis
            for data in rows:
                pipe.eval(
                    _SET_IF_NEWER_LUA,
                    1,
                    backend.make_key(_key(data["id"])),
                    data["version"],
                    json.dumps(data),
                    settings.BALANCE_CACHE_TTL_SECONDS,
                )
            pipe.execute()
        except Exception:
            log.warning(
                "cache writes after commit failed for accounts %s", [data["id"] for data in rows], exc_info=True
            )
            for data in rows:
                balance_cache_forget(data["id"])


def cache_writes_after_commit(work) -> CacheWrites:
    """The ``CacheWrites`` of ``work`` (a ledger.work.Work), flushed once it has committed."""
    writes = work.scoped.get("cache_writes")
    if writes is None:
        writes = work.scoped["cache_writes"] = CacheWrites()
        work.on_commit(writes.flush)
    return writes


def _set_quietly(key: str, value: Any, ttl: int) -> None:
    try:
        shared_cache().set(key, value, ttl)
    except Exception:
        log.warning("cache write failed for %s", key, exc_info=True)
