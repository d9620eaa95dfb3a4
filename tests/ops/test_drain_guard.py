"""balance_project/drain.py in one process, on either database: a statement running when the drain
starts is cancelled (PostgreSQL's cancel request, SQLite's interrupt), and none but a ROLLBACK is
sent after. The server-level drains are tests/ops/test_drain.py."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections

from balance_project import drain

pytestmark = pytest.mark.django_db(transaction=True)

LONG_QUERY = {
    "postgresql": "SELECT pg_sleep(20)",
    # A recursive count that runs for tens of seconds, in SQLite's own loop (which an interrupt stops).
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000000) "
    "SELECT count(*) FROM n",
}


@pytest.fixture
def guarded():
    """Guard connections opened from now on; undo it (and the refusal) afterwards."""
    drain.guard_connections()
    try:
        yield
    finally:
        drain.reset()
        from django.db.backends.signals import connection_created

        connection_created.disconnect(dispatch_uid="balance.drain")


def test_a_running_statement_is_cancelled_and_no_new_one_is_sent(guarded):
    started = threading.Event()
    outcome: list = []

    def long_statement() -> None:
        connection = connections["default"]  # this thread's own, opened (and guarded) here
        try:
            with connection.cursor() as cursor:
                started.set()
                cursor.execute(LONG_QUERY[connection.vendor])
            outcome.append("finished")
        except OperationalError as exc:  # cancelled: QueryCanceled (57014) / "interrupted"
            outcome.append(exc)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            outcome.append("sent after the drain")
        except OperationalError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=long_statement, daemon=True)
    worker.start()
    assert started.wait(10)
    assert _wait(lambda: drain.in_flight() == 1)
    time.sleep(0.2)  # the statement has reached the database
    cancelled_at = time.monotonic()
    assert drain.cancel_database_work() == 1
    worker.join(10)
    took = time.monotonic() - cancelled_at
    assert len(outcome) == 2, outcome
    assert isinstance(outcome[0], OperationalError), outcome
    assert isinstance(outcome[1], OperationalError) and "shutting down" in str(outcome[1])
    assert took < 2, f"the cancel took {took:.2f} s"


def test_a_rollback_still_goes_through_while_draining(guarded):
    outcome: list = []

    def work() -> None:
        connection = connections["default"]
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")  # opens, and so guards, this thread's connection
                drain.cancel_database_work()
                cursor.execute("SELECT 1")
        except OperationalError:
            outcome.append("refused")
        try:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
            outcome.append("rolled back")
        except OperationalError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome == ["refused", "rolled back"]


def _wait(predicate, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
