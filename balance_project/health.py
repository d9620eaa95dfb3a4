"""Probes for the orchestrator. No API key; JSON only.

/health is liveness: the process answers, nothing else is touched (no database, no Redis), so a
database outage never gets healthy processes restarted. /ready is readiness: the database answers a
query, every migration is applied, and Redis (when configured) answers a ping. Redis down does not
make the service unready (reads fall back to the database): it is reported as "degraded".

Both answer within a second whatever hangs (part of #10). Each check of /ready runs on a probe
thread of its own (``BoundedCheck``) with its own connection; the request waits for it at most
``READY_WAIT_SECONDS``, and a check that has not answered by then counts as down ("timeout") while
it goes on in the background (one at a time: a hung database holds one thread, not one per probe).
A result is reused for ``READY_CACHE_SECONDS``, so a burst of probes costs one query. gunicorn
serves both on threads of their own (balance_project/gunicorn_worker.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

# How long /ready waits for its checks, in all; and how long a result is reused.
READY_WAIT_SECONDS = 0.6
READY_CACHE_SECONDS = 0.5
# A probe's statements end by then on PostgreSQL (a frozen server is the wait above's).
PROBE_STATEMENT_TIMEOUT_MS = 500

# Once every migration is applied it stays so for the life of the process (new migrations come
# with new code, hence a new process), so the migration graph is loaded until it first passes.
_migrations_applied = False


@never_cache
@require_safe
def health(request):
    return JsonResponse({"status": "ok"})


class BoundedCheck:
    """A check run on a thread of its own, waited for a bounded time, its result kept a moment."""

    def __init__(self, name: str, check: Callable[[], dict], *, late: dict) -> None:
        self.name, self.check, self.late = name, check, late
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._done = threading.Condition(self._lock)
        self._result: dict | None = None
        self._finished_at = 0.0
        self._running = False
        self._thread: threading.Thread | None = None

    def result(self, deadline: float) -> dict:
        """The check's answer, fresh within READY_CACHE_SECONDS, or ``late`` once ``deadline`` passes."""
        with self._lock:
            if self._result is not None and time.monotonic() - self._finished_at < READY_CACHE_SECONDS:
                return self._result
            if not self._running:
                self._running = True
                self._start_locked()
            asked = time.monotonic()
            while self._running or self._finished_at < asked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self.late
                self._done.wait(left)
            assert self._result is not None  # set when the run that finished after ``asked`` ended
            return self._result

    def forget(self) -> None:
        """Drop the kept result: the next probe checks again (settings changed, as in tests)."""
        with self._lock:
            self._result, self._finished_at = None, 0.0

    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=f"ready-{self.name}", daemon=True)
            self._thread.start()
        self._wanted.set()

    def _loop(self) -> None:
        # One long-lived thread: it keeps its database connection from one probe to the next.
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                result = self.check()
            except Exception as exc:  # a check reports its own failures; this is a bug's safety net
                log.warning("readiness: %s check raised", self.name, exc_info=True)
                result = {"status": "down", "error": type(exc).__name__}
            with self._lock:
                self._result, self._finished_at, self._running = result, time.monotonic(), False
                self._done.notify_all()


def _database_and_migrations() -> dict:
    database = _database_check()
    migrations = _migrations_check() if database["status"] == "ok" else {"status": "unknown"}
    return {"database": database, "migrations": migrations}


_database_probe = BoundedCheck(
    "database",
    _database_and_migrations,
    late={"database": {"status": "down", "error": "timeout"}, "migrations": {"status": "unknown"}},
)
_redis_probe = BoundedCheck(
    "redis", lambda: {"redis": _redis_check()}, late={"redis": {"status": "degraded", "error": "timeout"}}
)


def ready_results_forget() -> None:
    _database_probe.forget()
    _redis_probe.forget()


@never_cache
@require_safe
def ready(request):
    deadline = time.monotonic() + READY_WAIT_SECONDS
    checks = {**_database_probe.result(deadline), **_redis_probe.result(deadline)}
    unready = any(check["status"] not in ("ok", "degraded", "disabled") for check in checks.values())
    degraded = any(check["status"] == "degraded" for check in checks.values())
    status = "unavailable" if unready else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks}, status=503 if unready else 200)


def _database_check() -> dict:
    """On the probe thread's own connection (closed after a failure, so the next one reconnects)."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"SET statement_timeout = {PROBE_STATEMENT_TIMEOUT_MS}")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc)
        connections["default"].close()
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor}


def _migrations_check() -> dict:
    global _migrations_applied
    if _migrations_applied:
        return {"status": "ok"}
    try:
        loader = MigrationLoader(connection)
        # Every migration on disk, not a plan to the leaves: a plan skips a gap below an applied leaf.
        pending = sorted(f"{app}.{name}" for app, name in set(loader.graph.nodes) - set(loader.applied_migrations))
    except Exception as exc:
        log.warning("readiness: migration check failed", exc_info=True)
        return {"status": "down", "error": type(exc).__name__}
    if pending:
        return {"status": "pending", "unapplied": pending[:20], "unapplied_count": len(pending)}
    _migrations_applied = True
    return {"status": "ok"}


def _redis_check() -> dict:
    if not settings.REDIS_URL:
        return {"status": "disabled"}
    try:
        from django_redis import get_redis_connection

        get_redis_connection("default").ping()
    except Exception as exc:
        log.warning("readiness: redis ping failed", exc_info=True)
        return {"status": "degraded", "error": type(exc).__name__}
    return {"status": "ok"}
