"""Gauges read from the database when Prometheus scrapes: ledger integrity and house balances.

They describe the books, not one process, so they are read fresh at each scrape instead of being
set by whichever process last ran a job. The HTTP server registers them (balance_project/
gunicorn.conf.py, ``post_worker_init``); its /metrics is the one Prometheus job that carries them.

- ``balance_ledger_integrity_ok{kind}``: 1 when the latest verify / reconcile run found nothing.
- ``balance_ledger_integrity_problems{kind}``: problems that run found.
- ``balance_ledger_integrity_last_run_timestamp_seconds{kind}``: when it finished (alert if stale).
- ``balance_system_account_balance{system_code,currency}`` and ``..._held``: house accounts, in minor
  units (the external-funds counterpart is negative by design: minus the money taken in).
"""
from __future__ import annotations

import logging

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


FAMILIES = {
    "balance_db_metrics_scrape_ok": [],
    "balance_ledger_integrity_ok": ["kind"],
    "balance_ledger_integrity_problems": ["kind"],
    "balance_ledger_integrity_last_run_timestamp_seconds": ["kind"],
    "balance_system_account_balance": ["system_code", "currency"],
    "balance_system_account_held": ["system_code", "currency"],
}


class LedgerGaugesCollector(Collector):
    def describe(self):
        """The names, without touching the database (the registry asks at registration)."""
        return [GaugeMetricFamily(name, name, labels=labels) for name, labels in FAMILIES.items()]

    def collect(self):
        scrape_ok = GaugeMetricFamily("balance_db_metrics_scrape_ok",
                                      "1 when the database gauges below were read, 0 when that failed.")
        try:
            families = list(self._read())
        except Exception:  # a failing gauge must not take /metrics (and every other metric) down with it
            log.exception("reading the ledger gauges failed")
            scrape_ok.add_metric([], 0)
            yield scrape_ok
            return
        scrape_ok.add_metric([], 1)
        yield scrape_ok
        yield from families

    def _read(self):
        from accounts.models import Account
        from ledger.models import IntegrityRun

        integrity_ok = GaugeMetricFamily("balance_ledger_integrity_ok",
                                         "1 when the latest integrity run of this kind found no problem.",
                                         labels=["kind"])
        problems = GaugeMetricFamily("balance_ledger_integrity_problems",
                                     "Problems found by the latest integrity run of this kind.", labels=["kind"])
        finished = GaugeMetricFamily("balance_ledger_integrity_last_run_timestamp_seconds",
                                     "When the latest integrity run of this kind finished (Unix time).",
                                     labels=["kind"])
        for kind in IntegrityRun.Kind.values:
            run = IntegrityRun.objects.filter(kind=kind).order_by("-finished_at").first()
            if run is not None:
                integrity_ok.add_metric([kind], 1 if run.ok else 0)
                problems.add_metric([kind], run.problem_count)
                finished.add_metric([kind], run.finished_at.timestamp())
        yield from (integrity_ok, problems, finished)

        balance = GaugeMetricFamily("balance_system_account_balance",
                                    "Balance of a house account, in minor units.", labels=["system_code", "currency"])
        held = GaugeMetricFamily("balance_system_account_held",
                                 "Amount held on a house account, in minor units.", labels=["system_code", "currency"])
        rows = Account.objects.filter(kind=Account.Kind.SYSTEM).values_list("system_code", "currency", "balance", "held")
        for system_code, currency, amount, amount_held in rows:
            balance.add_metric([system_code, currency], amount)
            held.add_metric([system_code, currency], amount_held)
        yield from (balance, held)


_registered: dict[int, LedgerGaugesCollector] = {}


def register(registry=REGISTRY) -> LedgerGaugesCollector:
    """Add the collector to ``registry`` once (a second call returns the first collector)."""
    if id(registry) not in _registered:
        collector = LedgerGaugesCollector()
        registry.register(collector)
        _registered[id(registry)] = collector
    return _registered[id(registry)]
