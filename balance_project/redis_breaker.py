"""A circuit breaker on the service's Redis connections, and what happens when Redis comes back
(part of #10). settings.CACHES gives django-redis this connection class.

Redis is a fast path only. When it stops answering (down, frozen, restarting), the first command
to notice waits out its socket timeout; the breaker then opens for ``REDIS_BREAKER_SECONDS`` and
every command in that time fails at once, so a frozen Redis costs calls nothing instead of a socket
timeout each, and the log gets one warning per opening instead of a traceback per command.

When it closes again (a command after the pause succeeds), the cache may hold balances older than
the database: writes made while it was unreachable failed, and a Redis restored from an older
snapshot holds old values. The hooks registered with ``on_recovery`` run then, once:
accounts/cache.py forgets every cached balance, so no stale balance is served.

While it is tripped, a probe thread pings Redis every ``PROBE_INTERVAL_SECONDS`` on a connection of
its own (calls never wait for it) and closes the breaker as soon as Redis answers, so the recovery,
a new generation of balances for every process, starts within a fraction of a second of Redis
answering again instead of after the whole breaker window: that is how long another process, one
that was idle through the freeze and so saw nothing fail, can still read a balance this one failed
to replace (docs/degradation.md).

A restart is also caught where no failure was seen (a process idle through it, or started after
it): the hooks registered with ``on_new_connection`` run on every new connection before its first
command, and accounts/cache.py's compares Redis's run_id with the one its balances were cached on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_open_until = 0.0
_tripped = False  # opened since the last recovery: the hooks run when it closes
_recovering = False
_hooks: list[Callable[[], None]] = []
_connect_hooks: list[Callable[[Any], None]] = []
PROBE_INTERVAL_SECONDS = 0.2
PROBE_TIMEOUT_SECONDS = 0.2
_probe: threading.Thread | None = None
_probe_target: dict[str, Any] | None = None  # where the connection that failed was connected


def on_recovery(hook: Callable[[], None]) -> None:
    _hooks.append(hook)


def on_new_connection(hook: Callable[[Any], None]) -> None:
    """``hook(connection)`` runs on each new connection, after the handshake and before any command
    of the caller; it talks over ``connection.send_command`` / ``read_response``. If it fails, the
    connection is closed and the command fails (the cache is skipped)."""
    if hook not in _connect_hooks:
        _connect_hooks.append(hook)


def is_open() -> bool:
    return time.monotonic() < _open_until


def trip(reason: BaseException, target: dict[str, Any] | None = None) -> None:
    """Open the breaker (a command failed with a connection error or a timeout)."""
    global _open_until, _tripped, _probe_target, _probe
    with _lock:
        first = not is_open()
        _open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
        _tripped = True
        if target is not None:
            _probe_target = target
        if _probe is None or not _probe.is_alive():
            _probe = threading.Thread(target=_probe_until_recovered, name="redis-probe", daemon=True)
            _probe.start()
    if first:
        log.warning(
            "Redis does not answer (%s); the cache is skipped for %ss",
            type(reason).__name__,
            settings.REDIS_BREAKER_SECONDS,
        )


def _probe_until_recovered() -> None:
    global _open_until
    while _tripped:
        time.sleep(PROBE_INTERVAL_SECONDS)
        target = _probe_target
        if target is None or _recovering or not _tripped:
            continue
        probe = redis.connection.Connection(
            **target, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
        )
        try:
            probe.connect()
            probe.send_command("PING")
            probe.read_response()
        except Exception:
            continue  # still down or frozen: quietly, the opening was logged once
        finally:
            probe.disconnect()
        with _lock:
            _open_until = 0.0
        succeeded()


def cache_trusted() -> bool:
    """False from the first failure until the recovery hooks have run: what the cache holds then
    may be older than the database, so balance reads skip it."""
    return not _tripped


def succeeded() -> None:
    """A command got through: after an opening, run the recovery hooks once, in the background (a
    call does not wait for them; reads skip the cache until they are done)."""
    global _recovering
    with _lock:
        if not _tripped or _recovering:
            return
        _recovering = True
    threading.Thread(target=_recover, name="redis-recovery", daemon=True).start()


def _recover() -> None:
    global _tripped, _recovering
    try:
        for hook in _hooks:
            hook()
        with _lock:
            _tripped = False
        log.warning("Redis answers again; cached balances that may be stale were dropped")
    except Exception:  # still failing: stay tripped, the next success tries again
        log.warning("Redis recovery did not complete; will try again", exc_info=True)
    finally:
        _recovering = False


def reset_for_tests() -> None:
    """Closed and trusted, as in a process that never saw Redis fail."""
    global _open_until, _tripped, _recovering
    with _lock:
        _open_until, _tripped, _recovering = 0.0, False, False


_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class CircuitBreakerConnection(redis.connection.Connection):
    """redis-py's connection, failing at once while the breaker is open and opening it on a
    connection error or timeout."""

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_if_open()
        try:
            super().connect(*args, **kwargs)
        except _FAILURES as exc:
            trip(exc, self._target())
            raise

    def on_connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        super().on_connect_check_health(*args, **kwargs)
        for hook in _connect_hooks:
            try:
                hook(self)
            except redis.exceptions.RedisError:
                raise
            except Exception as exc:  # the caller (connect) closes the connection on a RedisError
                raise redis.exceptions.ConnectionError(f"new-connection hook failed: {exc!r}") from exc

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._refuse_if_open()
        try:
            super().send_packed_command(command, check_health)
        except _FAILURES as exc:
            trip(exc, self._target())
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().read_response(*args, **kwargs)
        except _FAILURES as exc:
            trip(exc, self._target())
            raise
        if _tripped:
            succeeded()
        return response

    def _target(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
        }

    def _refuse_if_open(self) -> None:
        if is_open():
            raise redis.exceptions.ConnectionError("Redis circuit breaker open (balance_project/redis_breaker.py)")


class CircuitBreakerConnectionPool(redis.ConnectionPool):
    """settings.CACHES' CONNECTION_POOL_CLASS: redis-py's pool, handing out breaker connections."""

    def __init__(self, connection_class: type = redis.connection.Connection, **kwargs: Any) -> None:
        if connection_class is redis.connection.Connection:
            connection_class = CircuitBreakerConnection
        super().__init__(connection_class=connection_class, **kwargs)
