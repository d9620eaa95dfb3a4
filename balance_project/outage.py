"""What a call does while PostgreSQL does not answer (part of #10): reads from the cache, marked
stale; writes refused at once with ``unavailable``.

When a database wait fails for want of the server (refused or broken connection, or no answer by
the call's deadline: balance_project/query_budget.py's watchdog, accounts/keys.py's bounded key
lookup), this process counts the database as down for ``DB_OUTAGE_RETRY_SECONDS``: calls in that
time do not wait on it again. Keys authenticate from what was verified recently
(accounts/keys.py), balances come from the balance cache marked stale (HTTP header
``Balance-Stale: true``, gRPC trailing metadata ``balance-stale: true``), anything that needs the
database, every write first, answers ``unavailable`` (retryable, same idempotency key). After that
time the next call tries the database again; one that answers ends the outage. Meanwhile a probe
thread of this process keeps asking the database itself, keeps the outage on while it fails, and
ends it as soon as it answers (calls do not pay the wait of finding it still down).

The per-call part (``call_state``) is entered by the budget middleware and interceptor
(balance_project/deadlines.py), so nothing of one call leaks into the next served by the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

from balance_project.errors import ApplicationError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_down_until = 0.0
_down = False  # in an outage since the last answer: the log gets one line per change
_prober: threading.Thread | None = None

# Per call: [database seen down in this call, an answer was served from the cache unconfirmed].
_call: ContextVar[list[bool] | None] = ContextVar("balance_call_outage", default=None)

PROBE_INTERVAL_SECONDS = 0.25
PROBE_CONNECT_TIMEOUT_SECONDS = 2  # psycopg's least

STALE_HEADER = "Balance-Stale"
STALE_METADATA = "balance-stale"


@contextmanager
def call_state() -> Iterator[None]:
    token = _call.set([False, False])
    try:
        yield
    finally:
        _call.reset(token)


def database_down() -> bool:
    """True while this process counts the database as unreachable, or this call found it so."""
    state = _call.get()
    return time.monotonic() < _down_until or (state is not None and state[0])


def note_database_unreachable(reason: BaseException | str) -> None:
    global _down_until, _down, _prober
    state = _call.get()
    if state is not None:
        state[0] = True
    with _lock:
        _down_until = time.monotonic() + settings.DB_OUTAGE_RETRY_SECONDS
        first, _down = not _down, True
        if _prober is None or not _prober.is_alive():
            _prober = threading.Thread(target=_probe_until_answered, name="db-outage-probe", daemon=True)
            _prober.start()
    if first:
        log.warning(
            "the database does not answer (%s); reads come from the cache marked stale, writes are refused, "
            "for %ss at a time",
            reason if isinstance(reason, str) else type(reason).__name__,
            settings.DB_OUTAGE_RETRY_SECONDS,
        )


def note_call_degraded() -> None:
    """This call goes on without the database (the process already counts it down): unlike
    ``note_database_unreachable`` it does not push back the time of the next try."""
    state = _call.get()
    if state is not None:
        state[0] = True


def note_database_answered() -> None:
    global _down_until, _down
    if not _down:
        return
    with _lock:
        was, _down, _down_until = _down, False, 0.0
    if was:
        log.warning("the database answers again")


def _probe_until_answered() -> None:
    """While down, a connection of its own asks ``SELECT 1`` every PROBE_INTERVAL_SECONDS, each
    try bounded (connect_timeout, then the watchdog), and keeps the outage on while it fails: calls
    never wait on the database to learn that it is still down. When it answers, the outage ends.
    Should this thread die, the outage lapses after DB_OUTAGE_RETRY_SECONDS and calls try again."""
    global _down_until
    while _down:
        time.sleep(PROBE_INTERVAL_SECONDS)
        if _database_answers():
            note_database_answered()
            return
        with _lock:
            if _down:
                _down_until = time.monotonic() + settings.DB_OUTAGE_RETRY_SECONDS


def _database_answers() -> bool:
    from django.db import connections

    wrapper = connections["default"]
    if wrapper.vendor != "postgresql":
        return True
    import psycopg

    from balance_project.query_budget import WATCHDOG_SLACK_SECONDS, _watchdog

    try:
        params = wrapper.get_connection_params()
        params["connect_timeout"] = PROBE_CONNECT_TIMEOUT_SECONDS
        probe = psycopg.connect(**params, autocommit=True)
    except Exception:
        return False
    watch = _watchdog.arm(time.monotonic() + WATCHDOG_SLACK_SECONDS * 4, probe)
    try:
        probe.execute("SELECT 1")
        return not _watchdog.disarm(watch)
    except Exception:
        _watchdog.disarm(watch)
        return False
    finally:
        probe.close()


def mark_stale() -> None:
    """This call's answer came from the cache while the database could not confirm it."""
    state = _call.get()
    if state is not None:
        state[1] = True


def served_stale() -> bool:
    state = _call.get()
    return state is not None and state[1]


def database_unavailable() -> ApplicationError:
    return ApplicationError(
        "unavailable",
        "the balance database is unavailable; retry (a write with the same idempotency key)",
        {"retryable": True, "retry_after": max(1, round(settings.DB_OUTAGE_RETRY_SECONDS))},
    )


def is_connection_failure(exc: BaseException) -> bool:
    """A PostgreSQL error that says the server is not there (no SQLSTATE: the connection failed or
    broke; class 08: connection exception; 57P0x: shutting down, crashed, not accepting). SQLite's
    errors never are: the embedded database is a file, "database is locked" is a busy writer."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if not type(cause).__module__.startswith("psycopg"):
        return False
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def reset_for_tests() -> None:
    global _down_until, _down
    with _lock:
        _down_until, _down = 0.0, False  # a running probe sees _down false and ends
