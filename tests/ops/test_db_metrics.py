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


def test_the_rake_gauge_is_the_sum_of_the_rake_shards(settings):
    from accounts.models import Account
    from tables.models import Table
    from tables.services import hand_settle, table_buy_in
    from tests.tables.helpers import new_key, new_player, open_table

    settings.RAKE_ACCOUNT_SHARDS = 1000  # each table its own shard
    for rake in (5, 7):
        table = open_table("EUR")
        players = [new_player(funded=1000)[0] for _ in range(2)]
        for user in players:
            table_buy_in(client="tests", idempotency_key=new_key(), user_id=user, table_id=table, amount=100)
        hand_settle(
            client="tests",
            idempotency_key=new_key(),
            table_id=table,
            hand_id="1",
            contributions={players[0]: 50, players[1]: 50},
            payouts={players[0]: 100 - rake},
            rake=rake,
        )
        assert (
            Account.objects.get(
                kind="system", system_code="rake", currency="EUR", shard=Table.objects.get(table_id=table).pk % 1000
            ).balance
            == rake
        )
    assert Account.objects.filter(kind="system", system_code="rake").count() == 2
    assert scrape()["balance_system_account_balance{currency=EUR,system_code=rake}"] == 12
