"""Prometheus gauges of the *recorded* integrity runs, as far as their signatures vouch for them.

The truth about the ledger's integrity is in the process that ran the check (ledger/integrity_gauges.py,
the worker's /metrics). What any process can add from the database is which recorded runs are
signed (ledger/integrity_trust.py) and how many rows claim to be runs but are not: a forged "ok" run
dated 2036 shows here as ``balance_ledger_recorded_runs_forged`` 1, never as a clean ledger.

Per run kind (``verify``, ``reconcile``), read at scrape time:
- ``balance_ledger_recorded_run_ok{kind}``: 1 when the latest trusted run found nothing, else 0.
- ``balance_ledger_recorded_run_problems{kind}``: how many problems it found.
- ``balance_ledger_recorded_run_timestamp_seconds{kind}``: when it finished (Unix time).
- ``balance_ledger_recorded_runs_forged{kind}``: rows newer than it whose signature fails or that
  are dated in the future (0 when none; always exported once the table exists).

Registering queries nothing (``describe`` is static). No trusted run means no ok/problems/timestamp
sample (not a fake 1); a scrape before the tables exist (migrations running) yields no samples.
``register_collector`` also registers the in-process gauges of ledger/integrity_gauges.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection
from prometheus_client.core import REGISTRY, CollectorRegistry, GaugeMetricFamily

from ledger import integrity_gauges

if TYPE_CHECKING:
    from ledger.integrity_trust import RunTrust

log = logging.getLogger(__name__)

RUN_OK = (
    "balance_ledger_recorded_run_ok",
    "1 when the latest signed integrity run of this kind found nothing, else 0.",
)
RUN_PROBLEMS = (
    "balance_ledger_recorded_run_problems",
    "Problems found by the latest signed integrity run of this kind.",
)
RUN_AT = (
    "balance_ledger_recorded_run_timestamp_seconds",
    "When the latest signed integrity run of this kind finished (Unix time).",
)
FORGED = (
    "balance_ledger_recorded_runs_forged",
    "Integrity run rows newer than the latest signed one that fail their signature or are dated in the future.",
)
FAMILIES = (RUN_OK, RUN_PROBLEMS, RUN_AT, FORGED)

_registered = False
_register_lock = threading.Lock()


class RecordedRunsCollector:
    def __init__(self) -> None:
        self._tables_ready = False

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc, labels=["kind"]) for name, doc in FAMILIES]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        trusts = self._read()
        if trusts is None:
            return
        families = {name: GaugeMetricFamily(name, doc, labels=["kind"]) for name, doc in FAMILIES}
        for trust in trusts:
            families[FORGED[0]].add_metric([trust.kind], trust.forged_count)
            if trust.latest is not None:
                families[RUN_OK[0]].add_metric([trust.kind], 1 if trust.latest.ok else 0)
                families[RUN_PROBLEMS[0]].add_metric([trust.kind], trust.latest.problem_count)
                families[RUN_AT[0]].add_metric([trust.kind], trust.latest.finished_at.timestamp())
        for family in families.values():
            if family.samples:
                yield family

    def _read(self) -> list[RunTrust] | None:
        from ledger.integrity_trust import integrity_run_trust
        from ledger.models import IntegrityRun

        # A scrape thread outside Django's request cycle (prometheus_client's own HTTP server)
        # would otherwise leave one open connection per scrape behind.
        opened_here = connection.connection is None
        try:
            if not self._tables_ready:
                self._tables_ready = IntegrityRun._meta.db_table in connection.introspection.table_names()
                if not self._tables_ready:
                    return None
            return [integrity_run_trust(kind) for kind in IntegrityRun.Kind.values]
        except DatabaseError:
            log.warning("integrity run metrics: the database could not be read", exc_info=True)
            return None
        finally:
            if opened_here and not connection.in_atomic_block:
                connection.close()


def register_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Register the collectors once per process (AppConfig.ready may run more than once)."""
    global _registered
    integrity_gauges.register(registry)
    with _register_lock:
        if registry is REGISTRY and _registered:
            return
        registry.register(RecordedRunsCollector())
        if registry is REGISTRY:
            _registered = True
