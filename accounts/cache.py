"""Balance cache. Written after commit, keyed by account, and only ever replaced by a newer
version, so two commits whose callbacks run out of order cannot leave the older one cached.

Nothing that moves money reads from here: postings read the locked row.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

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


def balance_cache_forget(account_id: int) -> None:
    try:
        shared_cache().delete(_key(account_id))
    except Exception:
        log.warning("balance cache delete failed for account %s", account_id, exc_info=True)
