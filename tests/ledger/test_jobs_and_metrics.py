"""Celery tasks record IntegrityRuns; the metrics collector reports the latest verification."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY, CollectorRegistry

from balance_project import db_metrics
from ledger.metrics import LedgerVerificationCollector, register_collector
from ledger.models import Checkpoint, IntegrityRun
from ledger.tasks import ledger_checkpoint_task, reconcile_balances_task, verify_ledger_task
from tests.ledger.conftest import balance_tampered

pytestmark = pytest.mark.django_db


def gauges(registry) -> dict[str, float | None]:
    names = (
        "balance_ledger_integrity_ok",
        "balance_ledger_integrity_problems",
        "balance_ledger_last_verified_timestamp_seconds",
        "balance_ledger_entries_verified",
        "balance_ledger_last_checkpoint_timestamp_seconds",
    )
    return {name: registry.get_sample_value(name) for name in names}


def test_verify_task_records_a_clean_run_and_metrics_report_it(books):
    result = verify_ledger_task.apply().get()
    run = IntegrityRun.objects.get(pk=result["run"]["id"])
    assert (run.kind, run.ok, run.problem_count, run.accounts_checked, run.entries_checked) == (
        "verify",
        True,
        0,
        3,
        14,
    )
    registry = CollectorRegistry()
    registry.register(LedgerVerificationCollector())
    assert gauges(registry) == {
        "balance_ledger_integrity_ok": 1,
        "balance_ledger_integrity_problems": 0,
        "balance_ledger_last_verified_timestamp_seconds": run.finished_at.timestamp(),
        "balance_ledger_entries_verified": 14,
        "balance_ledger_last_checkpoint_timestamp_seconds": None,
    }
    ledger_checkpoint_task.apply().get()
    assert (
        gauges(registry)["balance_ledger_last_checkpoint_timestamp_seconds"]
        == Checkpoint.objects.get().created_at.timestamp()
    )


def test_verify_task_records_problems(books):
    balance_tampered([books["a"]], 7)
    verify_ledger_task.apply().get()
    run = IntegrityRun.objects.latest("finished_at")
    assert not run.ok and run.problem_count == 1
    assert run.problems[0]["code"] == "balance_mismatch" and run.problems[0]["account_id"] == books["a"]
    # The collector registered by ledger.apps in this process turns red.
    assert gauges(REGISTRY)["balance_ledger_integrity_ok"] == 0
    assert gauges(REGISTRY)["balance_ledger_integrity_problems"] == 1


def test_stored_problems_are_capped_but_counted(wallet, monkeypatch):
    monkeypatch.setattr(IntegrityRun, "PROBLEMS_KEPT", 3)
    ids = [wallet(funded=10) for _ in range(5)]
    balance_tampered(ids, 11)
    verify_ledger_task.apply().get()
    run = IntegrityRun.objects.latest("finished_at")
    assert run.problem_count == len(ids)
    assert [p["account_id"] for p in run.problems] == sorted(ids)[:3]


def test_no_run_yet_means_no_samples_and_registering_queries_nothing(django_assert_num_queries):
    registry = CollectorRegistry()
    with django_assert_num_queries(0):
        register_collector(registry)
    assert gauges(registry) == dict.fromkeys(gauges(registry))
    # The house-account gauges of balance_project/db_metrics.py share the registry: no name twice.
    assert not set(db_metrics.FAMILIES) & {family.name for family in LedgerVerificationCollector().describe()}


def test_the_process_registry_carries_the_collector_and_metrics_endpoint_exposes_it(books, client):
    verify_ledger_task.apply().get()
    assert REGISTRY.get_sample_value("balance_ledger_entries_verified") == 14
    body = client.get("/metrics").content.decode()
    assert "balance_ledger_entries_verified 14.0" in body
    assert "balance_ledger_last_verified_timestamp_seconds" in body


def test_reconcile_task_finds_a_balance_that_differs_from_its_entries(books):
    assert reconcile_balances_task.apply().get()["run"]["ok"] is True
    balance_tampered([books["b"]], 1)
    result = reconcile_balances_task.apply().get()
    run = IntegrityRun.objects.get(pk=result["run"]["id"])
    assert (run.kind, run.ok, run.accounts_checked) == ("reconcile", False, 3)
    assert [(p["code"], p["account_id"]) for p in run.problems] == [("balance_mismatch", books["b"])]
    # Reconciliation runs do not count as a verification.
    assert gauges(REGISTRY)["balance_ledger_last_verified_timestamp_seconds"] is None


def test_checkpoint_task_signs_a_clean_ledger_and_refuses_a_dirty_one(books):
    result = ledger_checkpoint_task.apply().get()
    checkpoint = Checkpoint.objects.get(pk=result["checkpoint"]["id"])
    assert (checkpoint.account_count, checkpoint.entry_count) == (3, 14)
    assert checkpoint.heads[str(books["a"])][0] == 6
    balance_tampered([books["a"]], 7)
    assert ledger_checkpoint_task.apply().get()["error"]["code"] == "invalid_state"
    assert Checkpoint.objects.count() == 1


def test_commands_print_json_and_sign_checkpoints(books):
    out = StringIO()
    call_command("ledger_checkpoint", stdout=out)
    assert "checkpoint #" in out.getvalue()
    out = StringIO()
    call_command("verify_ledger", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True and report["checkpoint_id"] == Checkpoint.objects.get().pk
    balance_tampered([books["a"]], 7)
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", "--json", stdout=out)
    assert failure.value.returncode == 1
    assert json.loads(out.getvalue())["problems"][0]["account_id"] == books["a"]
    with pytest.raises(CommandError) as failure:
        call_command("ledger_checkpoint", stdout=StringIO(), stderr=StringIO())
    assert failure.value.returncode == 1
