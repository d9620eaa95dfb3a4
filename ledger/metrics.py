"""Prometheus gauges of ledger integrity, read from the database at scrape time.

A custom collector reads the latest IntegrityRun (kind ``verify``) and the latest checkpoint when
Prometheus scrapes, so every process that serves /metrics tells the same truth, whichever worker
ran the job. It is registered from ``LedgerConfig.ready``.

- ``balance_ledger_integrity_ok``: 1 when the latest full verification found no problem, else 0.
- ``balance_ledger_integrity_problems``: how many problems it found.
- ``balance_ledger_last_verified_timestamp_seconds``: when it finished (alert when stale).
- ``balance_ledger_entries_verified``: how many entries it walked (a drop says it checked less).
- ``balance_ledger_last_checkpoint_timestamp_seconds``: when the latest signed checkpoint was taken.

Registering queries nothing (``describe`` is static). No run yet means no samples (not a fake 1);
a scrape before the tables exist (a fresh database, migrations running) yields no samples either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from prometheus_client.core import REGISTRY, CollectorRegistry, GaugeMetricFamily

log = logging.getLogger(__name__)

OK = ("balance_ledger_integrity_ok", "1 when the latest full ledger verification found no problem, else 0.")
PROBLEMS = ("balance_ledger_integrity_problems", "Problems found by the latest full ledger verification.")
LAST_VERIFIED = (
    "balance_ledger_last_verified_timestamp_seconds",
    "When the latest full ledger verification finished (Unix time).",
)
ENTRIES = ("balance_ledger_entries_verified", "Entries walked by the latest full ledger verification.")
LAST_CHECKPOINT = (
    "balance_ledger_last_checkpoint_timestamp_seconds",
    "When the latest signed checkpoint of the chain heads was taken (Unix time).",
)

_registered = False
_register_lock = threading.Lock()


class LedgerVerificationCollector:
    def __init__(self) -> None:
        self._tables_ready = False

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc) for name, doc in (OK, PROBLEMS, LAST_VERIFIED, ENTRIES, LAST_CHECKPOINT)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        run, checkpoint_at = self._read()
        if run is not None:
            yield GaugeMetricFamily(*OK, value=1 if run["ok"] else 0)
            yield GaugeMetricFamily(*PROBLEMS, value=run["problem_count"])
            yield GaugeMetricFamily(*LAST_VERIFIED, value=run["finished_at"].timestamp())
            yield GaugeMetricFamily(*ENTRIES, value=run["entries_checked"])
        if checkpoint_at is not None:
            yield GaugeMetricFamily(*LAST_CHECKPOINT, value=checkpoint_at.timestamp())

    def _read(self) -> tuple[Any, datetime | None]:
        from ledger.models import Checkpoint, IntegrityRun

        # A scrape thread outside Django's request cycle (prometheus_client's own HTTP server)
        # would otherwise leave one open connection per scrape behind.
        opened_here = connection.connection is None
        try:
            if not self._tables_ready:
                tables = set(connection.introspection.table_names())
                self._tables_ready = {IntegrityRun._meta.db_table, Checkpoint._meta.db_table} <= tables
                if not self._tables_ready:
                    return None, None
            run = (
                IntegrityRun.objects.filter(kind=IntegrityRun.Kind.VERIFY)
                .order_by("-finished_at", "-pk")
                .values("ok", "problem_count", "finished_at", "entries_checked")
                .first()
            )
            checkpoint_at = Checkpoint.objects.order_by("-created_at").values_list("created_at", flat=True).first()
            return run, checkpoint_at
        except DatabaseError:
            log.warning("ledger verification metrics: the database could not be read", exc_info=True)
            return None, None
        finally:
            if opened_here and not connection.in_atomic_block:
                connection.close()


def register_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Register the collector once per process (AppConfig.ready may run more than once)."""
    global _registered
    with _register_lock:
        if registry is REGISTRY and _registered:
            return
        registry.register(LedgerVerificationCollector())
        if registry is REGISTRY:
            _registered = True
