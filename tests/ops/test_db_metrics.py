"""The scrape-time gauges: ledger integrity from the latest runs, house balances from the accounts."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
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


def test_integrity_gauge_reports_the_latest_run_of_each_kind():
    from ledger.models import IntegrityRun

    now = timezone.now()
    IntegrityRun.objects.create(kind="verify", started_at=now - timedelta(minutes=11),
                                finished_at=now - timedelta(minutes=10), ok=True, problem_count=0)
    IntegrityRun.objects.create(kind="verify", started_at=now - timedelta(seconds=2), finished_at=now,
                                ok=False, problem_count=3)
    samples = scrape()
    assert samples["balance_ledger_integrity_ok{kind=verify}"] == 0
    assert samples["balance_ledger_integrity_problems{kind=verify}"] == 3
    assert samples["balance_ledger_integrity_last_run_timestamp_seconds{kind=verify}"] == pytest.approx(now.timestamp())
    assert "balance_ledger_integrity_ok{kind=reconcile}" not in samples  # no run yet: no sample, not a fake 1


def test_registering_twice_keeps_one_collector_and_names_are_described_without_the_database():
    registry = CollectorRegistry()
    assert db_metrics.register(registry) is db_metrics.register(registry)
    assert b"balance_db_metrics_scrape_ok" in generate_latest(registry)
    assert {f.name for f in db_metrics.LedgerGaugesCollector().describe()} == set(db_metrics.FAMILIES)

