"""Every ORM statement of a call bounded by the call's time left (part of #10).

ledger/work.py bounds the write path's own batches. This is the rest: balance reads from the
database, history, statements, reports, key authentication, and any ORM statement a service sends.
``call_budget`` (balance_project/deadlines.py) installs ``bounded_statement`` as an execute wrapper
on the call's connection for the length of the call; with no budget (jobs, commands) it is not
there at all.

On PostgreSQL each statement travels as ``SET LOCAL statement_timeout = <ms left>; <statement>`` in
the same simple-protocol query: one round trip, the setting ends with the statement's own
(implicit or explicit) transaction, and the server cancels the statement at the deadline; a
timed-out statement answers ``deadline_exceeded``. A server that cannot cancel because it does not
answer at all (frozen, network black hole) is the watchdog's: when a statement is still waiting
``WATCHDOG_SLACK_SECONDS`` after the deadline, the connection's socket is shut down, the wait ends
with an error, the call answers ``deadline_exceeded`` and the process counts the database as down
(balance_project/outage.py). Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) and batches
that set their own timeouts (ledger.work.Work's) pass untouched: a rollback must always be sent,
and a COMMIT is never cut off half way (its outcome would be unknown).

A streamed query (server-side cursor, ``.iterator()``) cannot carry a prefix inside its DECLARE; it
gets the timeout from a separate SET before it (one more round trip, reports only).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import InterfaceError, OperationalError

from balance_project import outage
from balance_project.deadlines import deadline_exceeded, time_left

log = logging.getLogger(__name__)

# Less than this left and no statement is sent (the same floor as ledger.work's round trips).
MIN_TIME_FOR_STATEMENT_SECONDS = 0.002
# The server cancels at the deadline; no answer this long after it means it cannot.
WATCHDOG_SLACK_SECONDS = 0.25
_WATCHDOG_TICK_SECONDS = 0.05
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END", "SET ", "SHOW ", "RESET")
_TIMEOUT_SQLSTATES = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available


def bounded_statement(execute, sql, params, many, context):
    """A ``connection.execute_wrapper``: ``sql`` with the call's time left as its timeout."""
    left = time_left()
    if left is None or not isinstance(sql, str) or _passes_untouched(sql):
        return execute(sql, params, many, context)
    if left <= MIN_TIME_FOR_STATEMENT_SECONDS:
        raise deadline_exceeded("before the database was asked")
    connection = context["connection"]
    if connection.vendor != "postgresql" or many:
        return execute(sql, params, many, context)
    streamed = getattr(context["cursor"].cursor, "name", None) is not None  # psycopg's ServerCursor
    if not streamed:
        return _bounded(execute, sql, params, many, context, left, streamed)
    _set_timeout_apart(connection, max(int(left * 1000), 1))
    try:
        return _bounded(execute, sql, params, many, context, left, streamed)
    finally:
        if not connection.in_atomic_block:  # the session setting must not outlive this query
            try:
                with connection.connection.cursor() as raw:
                    raw.execute("SET statement_timeout TO DEFAULT")
            except Exception:  # a broken connection: it is replaced, with the default
                log.debug("could not put statement_timeout back", exc_info=True)


def _bounded(execute, sql, params, many, context, left: float, streamed: bool):
    connection, cursor = context["connection"], context["cursor"]
    milliseconds = max(int(left * 1000), 1)
    watch = _watchdog.arm(time.monotonic() + left + WATCHDOG_SLACK_SECONDS, connection.connection)
    cut = False
    try:
        try:
            if streamed:
                result = execute(sql, params, many, context)
            else:
                result = execute(f"SET LOCAL statement_timeout = {milliseconds}; {sql}", params, many, context)
                cursor.nextset()  # past the SET's empty result, onto the statement's rows
        finally:
            cut = _watchdog.disarm(watch)
    except (OperationalError, InterfaceError) as exc:
        if cut:
            outage.note_database_unreachable("no answer by the deadline")
            raise deadline_exceeded("while the database did not answer") from exc
        if getattr(exc.__cause__, "sqlstate", None) in _TIMEOUT_SQLSTATES:
            raise deadline_exceeded("while the database was waiting") from exc
        if outage.is_connection_failure(exc):
            outage.note_database_unreachable(exc)
        raise
    if cut:  # the answer came as the socket was being shut down: the connection is gone either way
        outage.note_database_unreachable("no answer by the deadline")
        raise deadline_exceeded("while the database did not answer")
    return result


@contextmanager
def guarded() -> Iterator[None]:
    """Within the block, whatever waits on the default connection ends by the budget plus the
    slack, including what Django sends outside any execute wrapper. Its health check (``SELECT 1``
    in ``is_usable()`` before a request's first statement, CONN_HEALTH_CHECKS) is done here first,
    under the watchdog: a server that does not answer it is ``deadline_exceeded`` at once, not a
    hang, nor a reconnect that waits out connect_timeout."""
    from django.db import connections

    wrapper = connections["default"]
    left = time_left()
    raw = wrapper.connection
    if left is None or raw is None or wrapper.vendor != "postgresql":
        yield
        return
    deadline = time.monotonic() + max(left, 0) + WATCHDOG_SLACK_SECONDS
    if getattr(wrapper, "health_check_enabled", False) and not getattr(wrapper, "health_check_done", True):
        _health_check(wrapper, raw, deadline)
    watch = _watchdog.arm(deadline, raw)
    try:
        yield
    finally:
        if _watchdog.disarm(watch):
            outage.note_database_unreachable("no answer by the deadline")


def _health_check(wrapper, raw, deadline: float) -> None:
    watch = _watchdog.arm(deadline, raw)
    try:
        raw.execute("SELECT 1")
        answered = True
    except Exception:
        answered = False
    cut = _watchdog.disarm(watch)
    if answered and not cut:
        wrapper.health_check_done = True  # Django's own check would send the same again
        return
    if not wrapper.in_atomic_block:
        wrapper.close()  # broken either way; the next statement connects afresh
    if cut:
        outage.note_database_unreachable("no answer to the health check by the deadline")
        raise deadline_exceeded("while the database did not answer")


def _passes_untouched(sql: str) -> bool:
    head = sql.lstrip()[:16].upper()
    return head.startswith(_CONTROL) or "statement_timeout" in sql[:300]


def _set_timeout_apart(connection, milliseconds: int) -> None:
    """For a server-side cursor: in a transaction, SET LOCAL ends with it; in autocommit the
    cursor is WITH HOLD, so its query runs whole at DECLARE, and the session setting is put back
    right after it."""
    scope = "LOCAL " if connection.in_atomic_block else ""
    with connection.connection.cursor() as raw:
        raw.execute(f"SET {scope}statement_timeout = {milliseconds}")


class _Watchdog:
    """One thread for the process; ``arm`` / ``disarm`` around each bounded statement."""

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, Any]] = {}
        self._fired: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tokens = iter(range(1, 2**62))

    def arm(self, at: float, raw_connection: Any) -> int:
        with self._lock:
            token = next(self._tokens)
            self._armed[token] = (at, raw_connection)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-statement-watchdog", daemon=True)
                self._thread.start()
        return token

    def disarm(self, token: int) -> bool:
        """True when the watchdog cut this statement's connection."""
        with self._lock:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        while True:
            time.sleep(_WATCHDOG_TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                due = [token for token, (at, _) in self._armed.items() if at <= now]
                for token in due:
                    _, raw_connection = self._armed.pop(token)
                    self._fired.add(token)
                    _shut_down(raw_connection)


def _shut_down(raw_connection: Any) -> None:
    """End the blocked wait: shutting the socket down wakes the thread reading it with an error."""
    try:
        duplicate = socket.socket(fileno=os.dup(raw_connection.fileno()))
    except Exception:
        log.warning("could not reach the socket of a hung database connection", exc_info=True)
        return
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()
    log.warning("a database statement got no answer by its deadline; its connection was cut")


_watchdog = _Watchdog()
