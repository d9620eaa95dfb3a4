"""A bounded drain (part of #10): at the end of a server's grace period, the database work of the
calls still in flight is cancelled, so nothing they were doing commits after the process has
stopped answering for them.

Why it is needed: a call blocked on a row lock keeps waiting in PostgreSQL however the process
ends. The server cancelling the call toward its client, or even the process dying, does not stop
the backend: once the lock is released it runs the rest of the batch, COMMIT included. So at grace
the process itself cancels every statement its threads have in flight (libpq's cancel request;
SQLite's interrupt), and refuses any further statement but a ROLLBACK. A cancelled statement ends
its transaction (``ledger.work`` answers ``deadline_exceeded``: nothing was committed); a refused
one raises ``OperationalError``, answered as a retryable outage.

``guard_connections()`` puts the guard on every database connection the process opens from then on (an
execute wrapper added by Django's ``connection_created`` signal); the gRPC sidecar and the HTTP
workers call it at start. ``cancel_database_work()`` is what they call at grace.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

log = logging.getLogger("balance.drain")

# The connection each thread has a statement in flight on (thread id -> connection).
_in_flight: dict[int, BaseDatabaseWrapper] = {}
_refusing = threading.Event()
# How long a cancel request may take to reach PostgreSQL (it opens a connection of its own).
CANCEL_TIMEOUT_SECONDS = 0.5


class StatementGuard:
    """The execute wrapper: records the statement in flight, refuses new ones once draining."""

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
        ident = threading.get_ident()
        # A statement sent from inside another one's wrappers (a SET before a streamed query) must
        # not hide the outer one: it is put back when the inner one is done.
        outer = _in_flight.get(ident)
        # Recorded before the refusal is checked: cancel_database_work() sets the refusal, then
        # reads this map, so a statement either sees the refusal or is seen (and cancelled).
        _in_flight[ident] = context["connection"]
        try:
            if _refusing.is_set() and not str(sql).lstrip()[:8].upper().startswith("ROLLBACK"):
                raise OperationalError("the server is shutting down: no new statement is sent")
            return execute(sql, params, many, context)
        finally:
            if outer is None:
                _in_flight.pop(ident, None)
            else:
                _in_flight[ident] = outer


_guard = StatementGuard()


def _guard_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # First in the list: django's execute_wrapper() context manager pops the last one it added.
    if _guard not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _guard)


def guard_connections() -> None:
    """Guard every connection opened from now on (connections already open are not)."""
    connection_created.connect(_guard_connection, dispatch_uid="balance.drain")


def in_flight() -> int:
    """How many threads have a statement running now."""
    return len(_in_flight)


def refusing() -> bool:
    return _refusing.is_set()


def cancel_database_work() -> int:
    """Refuse every new statement but a ROLLBACK and cancel the ones running; returns how many
    were cancelled. Called again, it cancels whatever still runs (a cancel that reached the server
    just before its statement did is lost). Returns at once: the cancel requests travel on threads
    of their own, each bounded by CANCEL_TIMEOUT_SECONDS, since a frozen server answers none."""
    _refusing.set()
    running = list(_in_flight.values())
    for connection in running:
        threading.Thread(target=_cancel, args=(connection,), name="drain-cancel", daemon=True).start()
    return len(running)


def _cancel(connection: BaseDatabaseWrapper) -> None:
    raw = connection.connection
    if raw is None:
        return
    try:
        if connection.vendor == "postgresql":
            raw.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
        elif connection.vendor == "sqlite":
            raw.interrupt()
    except Exception as exc:  # the server is gone or frozen: the process exit ends the wait
        log.warning("drain: could not cancel a statement in flight: %s", exc)


def reset() -> None:
    """Accept statements again (tests, which drain a server in the test process)."""
    _refusing.clear()
