"""The scrape-time gauges of the house accounts, and their place beside the ledger's own gauges."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from balance_project import db_metrics

pytestmark = pytest.mark.django_db


def scrape() -> dict[str, float]:
    registry = CollectorRegistry()
    db_metrics.register(registry)
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_house_balances_follow_deposits(wallet):
    wallet(currency="EUR", funded=1500)
    wallet(currency="EUR", funded=500)
    samples = scrape()
    assert samples["balance_db_metrics_scrape_ok{}"] == 1
    # Money taken in is owed to the outside world: the external counterpart goes negative.
    assert samples["balance_system_account_balance{currency=EUR,system_code=external}"] == -2000


def test_registering_twice_keeps_one_collector_and_names_are_described_without_the_database():
    registry = CollectorRegistry()
    assert db_metrics.register(registry) is db_metrics.register(registry)
    assert b"balance_db_metrics_scrape_ok" in generate_latest(registry)
    assert {f.name for f in db_metrics.HouseAccountsCollector().describe()} == set(db_metrics.FAMILIES)



def test_coexists_with_the_ledger_collector_on_the_default_registry():
    """gunicorn registers these on the default registry, where ledger/apps.py put its own gauges."""
    from prometheus_client import REGISTRY

    db_metrics.register(REGISTRY)
    names = {family.name for family in REGISTRY.collect()}
    assert {"balance_system_account_balance", "balance_db_metrics_scrape_ok"} <= names
