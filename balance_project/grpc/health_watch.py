"""gRPC health that follows the database (part of #10): the sidecar answers SERVING only while a
``SELECT 1`` keeps succeeding.

A prober thread runs the query every ``interval`` on its own connection; a watcher thread sets the
health status from how long ago the last success was, so a query that hangs (PostgreSQL frozen)
turns the status to NOT_SERVING within ``stale_after`` as surely as one that fails. Health checks
are answered from that status at once, never by a worker thread waiting on the database. HTTP has
``/ready`` for the same question.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.db import connections
from grpc_health.v1 import health, health_pb2

log = logging.getLogger("balance.grpc")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def database_answers() -> None:
    """Raises unless the default database answers a query (on this thread's own connection)."""
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()  # the next probe reconnects
        raise


class DatabaseHealthWatch:
    def __init__(
        self,
        servicer: health.HealthServicer,
        services: Sequence[str],
        *,
        probe: Callable[[], None] = database_answers,
        interval: float = 0.5,
        stale_after: float = 2.0,
    ) -> None:
        self.servicer, self.services, self.probe = servicer, tuple(services), probe
        self.interval, self.stale_after = interval, stale_after
        self.last_success = time.monotonic()  # SERVING at start, as the server is built
        self.status: int = SERVING
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._probe_loop, name="grpc-health-probe", daemon=True),
            threading.Thread(target=self._watch_loop, name="grpc-health-watch", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop changing the status (before a graceful shutdown sets NOT_SERVING for good). The
        prober may be stuck in a query; it is a daemon thread and goes with the process."""
        self._stop.set()
        self._threads[1].join(timeout=2)

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
                self.last_success = time.monotonic()
            except Exception as exc:
                log.debug("health probe: the database did not answer: %s", exc)
            self._stop.wait(self.interval)
        connections.close_all()

    def _watch_loop(self) -> None:
        while not self._stop.wait(self.interval / 2):
            status = SERVING if time.monotonic() - self.last_success < self.stale_after else NOT_SERVING
            if status != self.status and not self._stop.is_set():
                self.status = status
                log.warning(
                    "gRPC health: %s (the database %s)",
                    "SERVING" if status == SERVING else "NOT_SERVING",
                    "answers again" if status == SERVING else "does not answer",
                )
                for service in self.services:
                    self.servicer.set(service, status)
