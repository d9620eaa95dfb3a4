"""gRPC health follows the database (balance_project/grpc/health_watch.py): NOT_SERVING while a
query fails or hangs, SERVING again once it answers. The probes here are real connections: one to
a port where nothing listens, one that hangs on a lock, and the test database itself."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from grpc_health.v1 import health, health_pb2

from balance_project.grpc.health_watch import NOT_SERVING, SERVING, DatabaseHealthWatch, database_answers
from tests.ops.faults import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(servicer: health.HealthServicer, service: str = "") -> int:
    return servicer.Check(health_pb2.HealthCheckRequest(service=service), None).status


def unreachable_database() -> None:
    import psycopg

    psycopg.connect("postgresql://balance@127.0.0.1:1/none", connect_timeout=1).close()


def test_health_turns_not_serving_while_the_database_is_unreachable_and_back():
    servicer = health.HealthServicer()
    for service in ("", "balance.v1.BalanceService"):
        servicer.set(service, SERVING)
    probe = {"now": unreachable_database}
    watch = DatabaseHealthWatch(
        servicer, ("", "balance.v1.BalanceService"), probe=lambda: probe["now"](), interval=0.1, stale_after=0.5
    )
    watch.start()
    try:
        assert wait_until(lambda: status_of(servicer) == NOT_SERVING)
        assert status_of(servicer, "balance.v1.BalanceService") == NOT_SERVING
        probe["now"] = database_answers
        assert wait_until(lambda: status_of(servicer) == SERVING)
    finally:
        watch.stop()


@pytest.mark.postgres
def test_a_probe_that_hangs_counts_as_down():
    """PostgreSQL frozen looks like a query that never returns: here, one waiting on a lock."""
    release = threading.Event()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS health_probe_lock (id int)")
    locked = threading.Event()

    def holder() -> None:
        from django.db import connections

        with connections["default"].cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE health_probe_lock IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(20)
            cursor.execute("ROLLBACK")
        connections["default"].close()

    def hanging_probe() -> None:
        from django.db import connections

        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT count(*) FROM health_probe_lock")

    servicer = health.HealthServicer()
    servicer.set("", SERVING)
    threading.Thread(target=holder, daemon=True).start()
    assert locked.wait(10)
    watch = DatabaseHealthWatch(servicer, ("",), probe=hanging_probe, interval=0.1, stale_after=0.5)
    watch.start()
    try:
        assert wait_until(lambda: status_of(servicer) == NOT_SERVING)
        release.set()
        assert wait_until(lambda: status_of(servicer) == SERVING)
    finally:
        release.set()
        watch.stop()
