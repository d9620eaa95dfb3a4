"""Celery tasks record signed IntegrityRuns; the gauges of the process that ran them report them.

The forged-row and banner cases are in tests/ops/test_integrity_monitoring.py and
tests/admin/test_integrity_banner.py.
"""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY, CollectorRegistry

from balance_project import db_metrics
from ledger import integrity_gauges
from ledger.integrity_trust import run_signature_valid
from ledger.metrics import FAMILIES, RecordedRunsCollector, register_collector
from ledger.models import IntegrityRun
from ledger.tasks import reconcile_balances_task, verify_ledger_task
from tests.ledger.conftest import balance_tampered

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_gauges():
    integrity_gauges.reset()
    yield
    integrity_gauges.reset()


def worker(name: str, scope: str = "full") -> float | None:
    return REGISTRY.get_sample_value(name, {"scope": scope})


def recorded(registry, kind: str = "verify") -> dict[str, float | None]:
    return {name: registry.get_sample_value(name, {"kind": kind}) for name, _doc in FAMILIES}


def test_verify_task_records_a_signed_clean_run_and_the_gauges_report_it(books):
    result = verify_ledger_task.apply().get()
    run = IntegrityRun.objects.get(pk=result["run"]["id"])
    assert (run.kind, run.ok, run.problem_count, run.accounts_checked, run.entries_checked) == (
        "verify",
        True,
        0,
        3,
        14,
    )
    assert run_signature_valid(run)
    assert worker("balance_ledger_integrity_ok") == 1
    assert worker("balance_ledger_entries_verified") == 14
    assert worker("balance_ledger_last_verified_timestamp_seconds") == run.finished_at.timestamp()
    registry = CollectorRegistry()
    registry.register(RecordedRunsCollector())
    assert recorded(registry) == {
        "balance_ledger_recorded_run_ok": 1,
        "balance_ledger_recorded_run_problems": 0,
        "balance_ledger_recorded_run_timestamp_seconds": run.finished_at.timestamp(),
        "balance_ledger_recorded_runs_forged": 0,
    }


def test_verify_task_records_problems(books):
    balance_tampered([books["a"]], 7)
    verify_ledger_task.apply().get()
    run = IntegrityRun.objects.latest("finished_at")
    assert not run.ok and run.problem_count >= 1
    assert ("balance_mismatch", books["a"]) in {(p["code"], p["account_id"]) for p in run.problems}
    # The gauges of this process (registered by ledger.apps) turn red.
    assert worker("balance_ledger_integrity_ok") == 0
    assert worker("balance_ledger_integrity_problems") == run.problem_count


def test_stored_problems_are_capped_but_counted(wallet, monkeypatch):
    monkeypatch.setattr(IntegrityRun, "PROBLEMS_KEPT", 3)
    ids = [wallet(funded=10) for _ in range(5)]
    balance_tampered(ids, 11)
    verify_ledger_task.apply().get()
    run = IntegrityRun.objects.latest("finished_at")
    assert run.problem_count >= len(ids) and len(run.problems) == 3
    assert run_signature_valid(run)  # signed over what it kept


def test_nothing_checked_means_no_verdict_and_registering_queries_nothing(django_assert_num_queries):
    registry = CollectorRegistry()
    with django_assert_num_queries(0):
        register_collector(registry)
    assert registry.get_sample_value("balance_ledger_integrity_ok", {"scope": "full"}) is None
    assert recorded(registry) == {
        "balance_ledger_recorded_run_ok": None,
        "balance_ledger_recorded_run_problems": None,
        "balance_ledger_recorded_run_timestamp_seconds": None,
        "balance_ledger_recorded_runs_forged": 0,
    }
    # The house-account gauges of balance_project/db_metrics.py share the registry: no name twice.
    assert not set(db_metrics.FAMILIES) & set(registry._names_to_collectors)


def test_the_metrics_endpoint_exposes_both(books, client):
    verify_ledger_task.apply().get()
    body = client.get("/metrics").content.decode()
    assert 'balance_ledger_entries_verified{scope="full"} 14.0' in body
    assert 'balance_ledger_recorded_run_ok{kind="verify"} 1.0' in body


def test_reconcile_task_finds_a_balance_that_differs_from_its_entries(books):
    assert reconcile_balances_task.apply().get()["run"]["ok"] is True
    balance_tampered([books["b"]], 1)
    result = reconcile_balances_task.apply().get()
    run = IntegrityRun.objects.get(pk=result["run"]["id"])
    assert (run.kind, run.ok, run.accounts_checked) == ("reconcile", False, 3)
    assert [(p["code"], p["account_id"]) for p in run.problems] == [("balance_mismatch", books["b"])]
    # Reconciliations have their own scope; they do not count as a verification.
    assert worker("balance_ledger_integrity_ok", "reconcile") == 0
    assert worker("balance_ledger_last_verified_timestamp_seconds") is None


def test_verify_command_prints_json_and_exits_1_on_problems(books):
    out = StringIO()
    call_command("verify_ledger", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"] is True
    balance_tampered([books["a"]], 7)
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", "--json", stdout=out)
    assert failure.value.returncode == 1
    assert books["a"] in {p["account_id"] for p in json.loads(out.getvalue())["problems"]}
