"""Balance cache. Written after commit, keyed by account, and only ever replaced by a newer
version, so two commits whose callbacks run out of order cannot leave the older one cached.

Nothing that moves money reads from here: postings read the locked row.

On Redis every balance lives under a generation (part of #10): ``<prefix>account-balance:v2:<gen>:<id>``,
where ``<gen>`` is read, inside the same script as the balance itself, from one hash that also holds
the run_id of the Redis that the generation belongs to. A Redis that restarted (from an old RDB or
AOF, or a replica promoted) has a new run_id; the first connection any process opens to it compares
the two before its first command (balance_project/redis_breaker.py's connect hook) and, atomically,
starts a new random generation: nothing cached before the restart is ever read again, by any
process, whether or not it saw Redis fail. A process whose writes failed while Redis was frozen
starts a new generation when Redis answers again (the breaker's recovery hook). A generation is a
random token, never a counter, so an old one can never come back; old keys expire with their TTL.
A hash gone missing (FLUSHDB) makes reads miss until a write starts a new generation.

Only wallets are cached (``balance_cached``): they are what callers read on the hot path
(GetBalance, the cashier's balance page). A seat's or a house account's balance changes with every
hand and is hardly read; refreshing it in Redis after every settlement was most of the cache's
writes (three Lua scripts per hand), so those are read from the database, never from here.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from typing import Any

from balance_project import redis_breaker
from balance_project.shared_cache import redis_pool, redis_round_trip, shared_cache

log = logging.getLogger(__name__)

_LOCAL_LOCK = threading.Lock()
_GENERATION_KEY = "balance-cache-generation"
_BALANCE_PREFIX = "account-balance:v2:"

# Every script: KEYS[1] = the generation hash, ARGV[1] = the balance key prefix, ARGV[2] = account id.
_GET_LUA = """
local g = redis.call('HGET', KEYS[1], 'gen')
if not g then return false end
return redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])
"""
# ARGV[3] = version, ARGV[4] = JSON payload, ARGV[5] = ttl seconds, ARGV[6] = a fresh generation, for
# a hash gone missing (FLUSHDB): with no run_id in it, the next new connection starts another anyway.
_SET_IF_NEWER_LUA = """
local g = redis.call('HGET', KEYS[1], 'gen')
if not g then
  g = ARGV[6]
  redis.call('HSET', KEYS[1], 'gen', g)
end
local key = ARGV[1] .. g .. ':' .. ARGV[2]
local current = redis.call('GET', key)
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and decoded['version'] and tonumber(decoded['version']) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('SET', key, ARGV[4], 'EX', tonumber(ARGV[5]))
return 1
"""
_FORGET_LUA = """
local g = redis.call('HGET', KEYS[1], 'gen')
if g then redis.call('DEL', ARGV[1] .. g .. ':' .. ARGV[2]) end
return 1
"""
# KEYS[1] = the generation hash, ARGV[1] = this Redis's run_id, ARGV[2] = a fresh generation.
_CHECK_RUN_LUA = """
if redis.call('HGET', KEYS[1], 'run_id') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'gen') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'gen', ARGV[2], 'run_id', ARGV[1])
return 1
"""
_RUN_ID = re.compile(rb"run_id:([0-9a-f]+)")


def balance_cached(kind: str) -> bool:
    """Whether the balances of accounts of ``kind`` live in this cache: wallets only."""
    return kind == "user"


def _key(account_id: int) -> str:
    """The local-memory cache's key (no generations: it dies with its process)."""
    return f"account-balance:v1:{account_id}"


def _names() -> tuple[str, str]:
    """(the generation hash's key, the balance keys' prefix), with the cache's KEY_PREFIX."""
    backend = shared_cache()
    return backend.make_key(_GENERATION_KEY), backend.make_key(_BALANCE_PREFIX)


def _redis_client():
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is a dependency
        return None
    backend = shared_cache()
    if not isinstance(backend, RedisCache):
        return None
    return backend.client.get_client(write=True)


def _check_run(connection) -> None:
    """redis_breaker's connect hook: before a new connection's first command, a Redis that is not
    the one the generation was started on gets a new generation."""
    from django_redis.cache import RedisCache

    if not isinstance(shared_cache(), RedisCache):
        return
    connection.send_command("INFO", "server")
    info = connection.read_response()
    found = _RUN_ID.search(info if isinstance(info, bytes) else str(info).encode())
    if found is None:
        raise ValueError("INFO server has no run_id")
    generation_key, _ = _names()
    connection.send_command("EVAL", _CHECK_RUN_LUA, 1, generation_key, found.group(1), secrets.token_hex(8))
    if connection.read_response():
        log.warning(
            "Redis run %s is not the one the balance cache was filled on: new generation, nothing older is read",
            found.group(1).decode()[:12],
        )


redis_breaker.on_new_connection(_check_run)


def balance_cache_get(account_id: int) -> dict[str, Any] | None:
    pool = redis_pool()
    if not redis_breaker.cache_trusted():
        # Redis failed since the cache was last emptied, so it may hold older balances: the database
        # answers. A ping (when the breaker lets one through) starts the recovery that empties it.
        if pool is not None and not redis_breaker.is_open():
            try:
                redis_round_trip(pool, [("PING",)])
            except Exception:
                log.debug("Redis still does not answer", exc_info=True)
        return None
    try:
        if pool is not None:
            if redis_breaker.is_open():
                return None
            generation_key, prefix = _names()
            (raw,) = redis_round_trip(pool, [("EVAL", _GET_LUA, 1, generation_key, prefix, account_id)])
            return json.loads(raw) if raw else None
        return shared_cache().get(_key(account_id))
    except Exception as exc:  # Redis down or garbage: the database answers instead.
        log.warning("balance cache read failed for account %s: %r", account_id, exc)
        return None


def balance_cache_put(data: dict[str, Any]) -> None:
    """Store ``data`` unless the cache already holds the same or a newer version."""
    balance_cache_put_many([data])


def balance_cache_put_many(rows: list[dict[str, Any]]) -> None:
    """``balance_cache_put`` of each row, in one Redis round trip."""
    CacheWrites.of_rows(rows).flush()


def _puts(rows: list[dict[str, Any]], ttl: int) -> list[tuple[Any, ...]]:
    generation_key, prefix = _names()
    fresh = secrets.token_hex(8)
    return [
        (
            "EVAL",
            _SET_IF_NEWER_LUA,
            1,
            generation_key,
            prefix,
            data["id"],
            data["version"],
            json.dumps(data),
            ttl,
            fresh,
        )
        for data in rows
    ]


def balance_cache_forget_all() -> None:
    """Forget every cached balance at once, for every process (redis_breaker's recovery hook: after
    Redis missed writes, any of them may be older than the database): a new generation."""
    client = _redis_client()
    if client is None:
        return
    generation_key, _ = _names()
    client.hset(generation_key, "gen", secrets.token_hex(8))


redis_breaker.on_recovery(balance_cache_forget_all)


def balance_cache_forget(account_id: int) -> None:
    try:
        client = _redis_client()
        if client is None:
            shared_cache().delete(_key(account_id))
            return
        if redis_breaker.is_open():
            return  # the recovery starts a new generation: this balance goes with all the others
        generation_key, prefix = _names()
        client.eval(_FORGET_LUA, 1, generation_key, prefix, account_id)
    except Exception as exc:
        log.warning("balance cache delete failed for account %s: %r", account_id, exc)


class CacheWrites:
    """The cache writes of one committed transaction, sent together in one Redis round trip: the
    balances of the accounts it changed (each only over an older version) and plain values such as
    its idempotency answer (JSON text). Collect them with ``cache_writes_after_commit``."""

    def __init__(self) -> None:
        self.accounts: dict[int, Any] = {}  # id -> the row as it stands at commit
        self.rows: list[dict[str, Any]] = []  # balances already rendered (account_result)
        self.values: list[tuple[str, str, int]] = []  # (cache key, JSON text, ttl seconds)

    @classmethod
    def of_rows(cls, rows: list[dict[str, Any]]) -> CacheWrites:
        writes = cls()
        writes.rows = list(rows)
        return writes

    def flush(self) -> None:
        from django.conf import settings

        from accounts.results import account_result

        rows = self.rows + [account_result(account) for account in self.accounts.values()]
        pool = redis_pool()
        if pool is None:  # a local-memory cache: one call each
            for key, value, ttl in self.values:
                _set_quietly(key, value, ttl)
            if rows:
                self._put_locally(rows, settings.BALANCE_CACHE_TTL_SECONDS)
            return
        if redis_breaker.is_open():
            return  # nothing is read before the recovery's new generation: no write is missed
        if not rows and not self.values:
            return
        try:
            backend = shared_cache()
            commands: list[tuple[Any, ...]] = [
                ("SET", backend.make_key(key), value, "EX", ttl) for key, value, ttl in self.values
            ]
            redis_round_trip(pool, commands + _puts(rows, settings.BALANCE_CACHE_TTL_SECONDS))
        except Exception as exc:  # the breaker logs the outage once; one line here, no traceback
            log.warning("cache writes after commit failed for accounts %s: %r", [data["id"] for data in rows], exc)
            for data in rows:
                balance_cache_forget(data["id"])

    @staticmethod
    def _put_locally(rows: list[dict[str, Any]], ttl: int) -> None:
        try:
            with _LOCAL_LOCK:
                for data in rows:
                    current = shared_cache().get(_key(data["id"]))
                    if current is None or current["version"] < data["version"]:
                        shared_cache().set(_key(data["id"]), data, ttl)
        except Exception as exc:
            log.warning("balance cache write failed for accounts %s: %r", [data.get("id") for data in rows], exc)


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
