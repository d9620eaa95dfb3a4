"""Gauges read from the database when Prometheus scrapes: the balances of the house accounts.

They describe the books, not one process, so they are read fresh at each scrape. The HTTP server
registers them (balance_project/gunicorn.conf.py, ``post_worker_init``): its /metrics is the one
Prometheus job that carries them. Ledger integrity gauges are ledger/metrics.py's.

- ``balance_system_account_balance{system_code,currency}`` and ``..._held``: house accounts, in minor
  units (the external-funds counterpart is negative by design: minus the money taken in).
- ``balance_db_metrics_scrape_ok``: 1 when they were read, 0 when that failed.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

FAMILIES = {
    "balance_db_metrics_scrape_ok": [],
    "balance_system_account_balance": ["system_code", "currency"],
    "balance_system_account_held": ["system_code", "currency"],
}


class HouseAccountsCollector(Collector):
    def describe(self):
        """The names, without touching the database (the registry asks at registration)."""
        return [GaugeMetricFamily(name, name, labels=labels) for name, labels in FAMILIES.items()]

    def collect(self):
        scrape_ok = GaugeMetricFamily(
            "balance_db_metrics_scrape_ok", "1 when the house account gauges were read, 0 when that failed."
        )
        try:
            families = list(self._read())
        except Exception:  # a failing gauge must not take /metrics (and every other metric) down with it
            log.exception("reading the house account gauges failed")
            scrape_ok.add_metric([], 0)
            yield scrape_ok
            return
        scrape_ok.add_metric([], 1)
        yield scrape_ok
        yield from families

    def _read(self):
        from django.db.models import Sum

        from accounts.models import Account

        balance = GaugeMetricFamily(
            "balance_system_account_balance",
            "Balance of a house account, in minor units.",
            labels=["system_code", "currency"],
        )
        held = GaugeMetricFamily(
            "balance_system_account_held",
            "Amount held on a house account, in minor units.",
            labels=["system_code", "currency"],
        )
        # Summed over the shards of a house account (accounts.models.Account.shard).
        rows = (
            Account.objects.filter(kind=Account.Kind.SYSTEM)
            .values("system_code", "currency")
            .annotate(total=Sum("balance"), total_held=Sum("held"))
            .order_by("system_code", "currency")
            .values_list("system_code", "currency", "total", "total_held")
        )
        for system_code, currency, amount, amount_held in rows:
            balance.add_metric([system_code, currency], int(amount))
            held.add_metric([system_code, currency], int(amount_held))
        yield from (balance, held)


_registered: dict[int, HouseAccountsCollector] = {}


def register(registry=REGISTRY) -> HouseAccountsCollector:
    """Add the collector to ``registry`` once (a second call returns the first collector)."""
    if id(registry) not in _registered:
        collector = HouseAccountsCollector()
        registry.register(collector)
        _registered[id(registry)] = collector
    return _registered[id(registry)]
