"""Prometheus gauges from the latest ledger verification run (an IntegrityRun row).

A custom collector reads the row at scrape time, so every process that serves /metrics reports
the same truth, whichever worker ran the job. Registering it queries nothing (``describe`` is
static); a scrape before the table exists (fresh database, migrations running) yields no samples.
"""
from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connection
from prometheus_client.core import REGISTRY, GaugeMetricFamily

log = logging.getLogger(__name__)

_registered = False
_register_lock = threading.Lock()

OK = ("balance_ledger_integrity_ok", "1 if the latest ledger verification found no problem, else 0")
PROBLEMS = ("balance_ledger_integrity_problems", "Problems found by the latest ledger verification")
LAST_VERIFIED = ("balance_ledger_last_verified_timestamp_seconds",
                 "Unix time the latest ledger verification finished")
ENTRIES = ("balance_ledger_entries_verified", "Entries checked by the latest ledger verification")


class LedgerIntegrityCollector:
    def __init__(self) -> None:
        self._table_ready = False

    def describe(self):
        return [GaugeMetricFamily(name, doc) for name, doc in (OK, PROBLEMS, LAST_VERIFIED, ENTRIES)]

    def collect(self):
        run = self._latest_run()
        if run is None:
            return
        values = {OK: 1 if run["ok"] else 0, PROBLEMS: run["problem_count"],
                  LAST_VERIFIED: run["finished_at"].timestamp(), ENTRIES: run["entries_checked"]}
        for (name, doc), value in values.items():
            yield GaugeMetricFamily(name, doc, value=value)

    def _latest_run(self) -> dict | None:
        from ledger.models import IntegrityRun

        try:
            if not self._table_ready:
                self._table_ready = IntegrityRun._meta.db_table in connection.introspection.table_names()
                if not self._table_ready:
                    return None
            return (IntegrityRun.objects.filter(kind=IntegrityRun.Kind.VERIFY).order_by("-finished_at", "-pk")
                    .values("ok", "problem_count", "finished_at", "entries_checked").first())
        except DatabaseError:
            log.warning("ledger integrity metrics: could not read the latest run", exc_info=True)
            return None


def register_collector() -> None:
    """Register the collector once per process (AppConfig.ready may run more than once)."""
    global _registered
    with _register_lock:
        if _registered:
            return
        REGISTRY.register(LedgerIntegrityCollector())
        _registered = True
