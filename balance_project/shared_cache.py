"""One cache backend per process, shared by every thread and every call.

Django keeps cache backends in context-local storage, and the gRPC server runs each call in a fresh
``contextvars.Context``: every call built a new backend and a new Redis client (about a tenth of the
sidecar's CPU). The django-redis and local-memory backends are thread-safe, so the service uses
this one backend instead. It is rebuilt when settings.CACHES changes (tests do that).

On Redis, the hot calls' own commands (the idempotency fast path, the balance cache) go through
``redis_round_trip``: one pooled connection, the commands packed and sent at once, the replies read
back. redis-py's client and pipeline objects wrap each command in a retry, an event dispatch and
observability records: about 150 Python calls per command, a tenth of the sidecar's CPU under load
(bench/README.md, session 8). The connection is the pool's own (balance_project/redis_breaker.py),
so the breaker sees every failure as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed

_lock = threading.Lock()
_backend: BaseCache | None = None


def shared_cache() -> BaseCache:
    global _backend
    backend = _backend
    if backend is None:
        with _lock:
            if _backend is None:
                _backend = caches.create_connection("default")
            backend = _backend
    return backend


def redis_pool() -> Any | None:
    """The shared backend's Redis connection pool; None when the cache is not Redis (the embedded
    default's local memory)."""
    client = getattr(shared_cache(), "client", None)
    get_client = getattr(client, "get_client", None)  # django-redis's DefaultClient
    return get_client(write=True).connection_pool if get_client is not None else None


def redis_round_trip(pool: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` to Redis in one round trip on one connection of ``pool``; their replies in
    order. Every reply is read before the first error reply (a script's) is raised, so the
    connection goes back clean; on a connection failure or timeout it is dropped instead."""
    import redis

    from balance_project import tracing

    if tracing.is_on():  # its Redis instrumentation wraps redis-py's client: let the commands go through it
        pipe = redis.Redis(connection_pool=pool).pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()
    connection = _thread_connection(pool)
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        refused: redis.exceptions.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.exceptions.ResponseError as error:
                refused = refused or error
                replies.append(error)
    except BaseException:
        connection.disconnect()  # the next round trip connects it again (and runs the connect hooks)
        raise
    if refused is not None:
        raise refused
    return replies


class _Held:
    """A thread's connection, in its thread-local storage alone: freed (by reference count, at
    once) when the thread ends, it closes the connection's socket. The connection itself sits in
    reference cycles (its parser, its events) that only the garbage collector would break, later."""

    __slots__ = ("connection", "pid", "pool")

    def __init__(self, pool: Any, connection: Any) -> None:
        self.pool, self.pid, self.connection = pool, os.getpid(), connection

    def __del__(self) -> None:
        try:
            self.connection.disconnect()  # not in a forked child: redis-py only shuts down its own
        except Exception:
            pass


_held = threading.local()


def _thread_connection(pool: Any) -> Any:
    """This thread's own connection, made as ``pool`` makes its connections (same class, same
    settings: the breaker's) and kept: taking one from the pool and handing it back cost more than
    the commands (a lock, a poll of the socket, events and counters each way). It is not counted in
    the pool, since threads come and go (the HTTP server's, the tests'): one taken from the pool and
    never handed back would count against its cap (100) forever. A process forked from this one (a
    Celery worker) makes its own."""
    held: _Held | None = getattr(_held, "connection", None)
    if held is not None and held.pool is pool and held.pid == os.getpid():
        return _ready(held.connection)
    connection = pool.connection_class(**pool.connection_kwargs)
    _held.connection = _Held(pool, connection)
    return connection


def _ready(connection: Any) -> Any:
    """What the pool checks before it hands a connection out: one whose socket has something to
    read (the server closed it, as a restarted Redis does) is dropped, and the next command connects
    afresh (running the connect hooks) instead of failing and tripping the breaker."""
    import redis

    if connection._sock is not None:
        try:
            if connection.can_read():
                connection.disconnect()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            connection.disconnect()
    return connection


def _forget_on_caches_change(*, setting: str, **kwargs) -> None:
    global _backend
    if setting == "CACHES":
        with _lock:
            _backend = None


setting_changed.connect(_forget_on_caches_change)
