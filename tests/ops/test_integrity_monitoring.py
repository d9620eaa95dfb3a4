"""Integrity monitoring that a database row cannot forge (issue #9, item 5).

Runs are signed over every field (ledger/integrity_trust.py); a row without a valid signature, or
dated in the future, is never trusted and shows as forged; the gauges of the process that ran the
check (ledger/integrity_gauges.py) come from the check itself; the alert rules ask only for metrics
the code exports. Forged rows go in by raw SQL, as a database insider without the key would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry

from ledger import integrity_gauges, metrics
from ledger.integrity_runs import integrity_run_verify
from ledger.integrity_trust import integrity_run_latest_trusted, integrity_run_trust, run_signature, run_signature_valid
from ledger.models import IntegrityRun
from tests.ledger.conftest import balance_tampered, triggers_bypassed

pytestmark = pytest.mark.django_db
DOCKER = Path(__file__).resolve().parents[2] / "docker"
FAR_FUTURE = datetime(2036, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_gauges():
    """Each test starts as a worker that has checked nothing yet."""
    integrity_gauges.reset()
    yield
    integrity_gauges.reset()


@pytest.fixture
def funded(wallet):
    return [wallet(funded=500), wallet(funded=300)]


def insert_run_by_sql(*, ok: bool, finished_at: datetime, signature: str = "", problems=None) -> int:
    """A run row written straight into the table, as a database insider would."""
    problems = problems or []
    jsonb = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    returning = "RETURNING id"
    with triggers_bypassed() as cursor:
        cursor.execute(
            "INSERT INTO ledger_integrityrun (kind, started_at, finished_at, ok, problem_count, problems,"
            " accounts_checked, entries_checked, transactions_checked, through_seal, signature)"
            f" VALUES ('verify', %s, %s, %s, %s, {jsonb}, 3, 6, 3, NULL, %s) {returning}",
            [finished_at - timedelta(seconds=1), finished_at, ok, len(problems), json.dumps(problems), signature],
        )
        return cursor.fetchone()[0]


def worker_gauge(name: str, scope: str = "full", registry=REGISTRY) -> float | None:
    return registry.get_sample_value(name, {"scope": scope})


def http_gauges(registry: CollectorRegistry) -> dict[str, float | None]:
    return {name: registry.get_sample_value(name, {"kind": "verify"}) for name, _doc in metrics.FAMILIES}


def test_a_recorded_run_is_signed_over_every_field_it_states(funded):
    run = IntegrityRun.objects.get(pk=integrity_run_verify()["run"]["id"])
    assert run.ok and run_signature_valid(run)  # as read back from the database
    for field, value in {
        "kind": "reconcile",
        "started_at": run.started_at - timedelta(microseconds=1),
        "finished_at": run.finished_at + timedelta(days=1),
        "ok": False,
        "problem_count": 1,
        "problems": [{"code": "balance_mismatch", "message": "x"}],
        "accounts_checked": run.accounts_checked + 1,
        "entries_checked": run.entries_checked - 1,
        "transactions_checked": run.transactions_checked + 1,
        "through_seal": 7,
    }.items():
        edited = IntegrityRun.objects.get(pk=run.pk)
        setattr(edited, field, value)
        assert not run_signature_valid(edited), f"{field} is not covered by the signature"
    # An edit in the database itself (the insider's way) breaks it too.
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_integrityrun SET entries_checked = 9999 WHERE id = %s", [run.pk])
    assert not run_signature_valid(IntegrityRun.objects.get(pk=run.pk))
    assert integrity_run_latest_trusted("verify") is None


def test_a_forged_ok_row_dated_2036_is_not_trusted_and_the_gauges_say_so(funded, client):
    balance_tampered([funded[0]], 1)
    failed = IntegrityRun.objects.get(pk=integrity_run_verify()["run"]["id"])
    assert not failed.ok
    forged_id = insert_run_by_sql(ok=True, finished_at=FAR_FUTURE, signature="0" * 64)

    assert integrity_run_latest_trusted("verify") == failed
    trust = integrity_run_trust("verify")
    assert trust.forged_count == 1 and [(f.id, f.ok, f.reason) for f in trust.forged] == [
        (forged_id, True, "signature")
    ]
    assert "2036-01-01T12:00:00" in trust.forged[0].message

    registry = CollectorRegistry()
    registry.register(metrics.RecordedRunsCollector())
    assert http_gauges(registry) == {
        "balance_ledger_recorded_run_ok": 0,
        "balance_ledger_recorded_run_problems": failed.problem_count,
        "balance_ledger_recorded_run_timestamp_seconds": failed.finished_at.timestamp(),
        "balance_ledger_recorded_runs_forged": 1,
    }
    # The worker's own gauges are what the check found; the row moved nothing.
    assert worker_gauge("balance_ledger_integrity_ok") == 0
    assert worker_gauge("balance_ledger_last_verified_timestamp_seconds") == failed.finished_at.timestamp()
    body = client.get("/metrics").content.decode()
    assert 'balance_ledger_recorded_runs_forged{kind="verify"} 1.0' in body
    assert 'balance_ledger_integrity_ok{scope="full"} 0.0' in body


def test_a_signed_run_dated_in_the_future_is_not_trusted_either(funded):
    clean = IntegrityRun.objects.get(pk=integrity_run_verify()["run"]["id"])
    future = IntegrityRun(
        kind="verify", started_at=FAR_FUTURE, finished_at=FAR_FUTURE, ok=True, problem_count=0, problems=[]
    )
    future.signature = run_signature(future)  # as if the key had signed it: the date alone disqualifies it
    future.save()
    trust = integrity_run_trust("verify")
    assert trust.latest == clean
    assert [(f.id, f.reason) for f in trust.forged] == [(future.pk, "future")]


def test_only_forged_rows_means_nothing_is_trusted():
    insert_run_by_sql(ok=True, finished_at=timezone.now() - timedelta(minutes=1))
    insert_run_by_sql(ok=True, finished_at=FAR_FUTURE)
    trust = integrity_run_trust("verify")
    assert trust.latest is None and trust.forged_count == 2
    registry = CollectorRegistry()
    registry.register(metrics.RecordedRunsCollector())
    # No trusted run: no ok sample at all (not a fake 1), and the forged count.
    assert http_gauges(registry) == {
        "balance_ledger_recorded_run_ok": None,
        "balance_ledger_recorded_run_problems": None,
        "balance_ledger_recorded_run_timestamp_seconds": None,
        "balance_ledger_recorded_runs_forged": 2,
    }


def test_worker_gauges_are_set_by_the_function_that_ran_the_check(funded):
    # Before any check this process exports no verdict, and a row in the database does not give it one.
    insert_run_by_sql(ok=True, finished_at=timezone.now())
    assert worker_gauge("balance_ledger_integrity_ok") is None
    assert worker_gauge("balance_ledger_last_verified_timestamp_seconds") is None

    result = integrity_run_verify()  # in this process, as the worker's task runs it
    run = IntegrityRun.objects.get(pk=result["run"]["id"])
    assert worker_gauge("balance_ledger_integrity_ok") == 1
    assert worker_gauge("balance_ledger_integrity_problems") == 0
    assert worker_gauge("balance_ledger_last_verified_timestamp_seconds") == run.finished_at.timestamp()
    assert worker_gauge("balance_ledger_entries_verified") == run.entries_checked > 0

    balance_tampered([funded[1]], 7)
    failed = IntegrityRun.objects.get(pk=integrity_run_verify()["run"]["id"])
    assert worker_gauge("balance_ledger_integrity_ok") == 0
    assert worker_gauge("balance_ledger_integrity_problems") == failed.problem_count > 0
    # Deleting the failed run's row leaves the process's verdict as it was.
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_integrityrun WHERE NOT ok")
    assert worker_gauge("balance_ledger_integrity_ok") == 0


def test_scopes_seals_and_refusals_are_gauged_in_process():
    registry = CollectorRegistry()
    integrity_gauges.register(registry)
    integrity_gauges.register(registry)  # once per registry
    assert registry.get_sample_value("balance_ledger_seal_refusals_total") == 0
    assert registry.get_sample_value("balance_ledger_last_seal_timestamp_seconds") is None

    finished = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    report = {"ok": True, "problem_count": 0, "finished_at": "2026-12-01T10:00:00.000000Z", "entries_checked": 42}
    integrity_gauges.verification_recorded(report | {"through_seal": 17}, scope="incremental")
    assert worker_gauge("balance_ledger_verified_through_seal", "incremental", registry) == 17
    assert worker_gauge("balance_ledger_last_verified_timestamp_seconds", "incremental", registry) == (
        finished.timestamp()
    )
    assert worker_gauge("balance_ledger_integrity_ok", "full", registry) is None
    with pytest.raises(ValueError, match="unknown integrity check scope"):
        integrity_gauges.verification_recorded(report, scope="partial")

    sealed_at = datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)
    before = timezone.now().timestamp()
    integrity_gauges.seal_recorded(seal_id=9, last_position=1234, sealed_at=sealed_at)
    assert registry.get_sample_value("balance_ledger_last_seal_id") == 9
    assert registry.get_sample_value("balance_ledger_last_seal_position") == 1234
    assert registry.get_sample_value("balance_ledger_last_seal_timestamp_seconds") == sealed_at.timestamp()
    assert registry.get_sample_value("balance_ledger_sealer_last_success_timestamp_seconds") >= before
    integrity_gauges.seal_refused()
    assert registry.get_sample_value("balance_ledger_seal_refusals_total") == 1

    integrity_gauges.reset()
    integrity_gauges.sealer_succeeded()  # an empty journal: alive, with no seal to describe
    assert registry.get_sample_value("balance_ledger_sealer_last_success_timestamp_seconds") >= before
    assert registry.get_sample_value("balance_ledger_last_seal_id") is None


# ---- alert rules ---------------------------------------------------------------------------------


def rules() -> dict[str, dict]:
    data = yaml.safe_load((DOCKER / "prometheus-rules.yml").read_text())
    return {rule["alert"]: rule for group in data["groups"] for rule in group["rules"]}


def integrity_names() -> set[str]:
    """Every sample name the integrity collectors can export (described without collecting)."""
    registry = CollectorRegistry()
    metrics.register_collector(registry)
    return set(registry._names_to_collectors)


@pytest.mark.parametrize(
    ("alert", "metric"),
    [
        ("LedgerIntegrityFailed", "balance_ledger_integrity_ok"),
        ("LedgerRecordedRunFailed", "balance_ledger_recorded_run_ok"),
        ("LedgerIntegrityRunForged", "balance_ledger_recorded_runs_forged"),
        ("LedgerVerificationStale", 'balance_ledger_last_verified_timestamp_seconds{scope=~"full|incremental"}'),
        ("LedgerVerificationMissing", 'balance_ledger_last_verified_timestamp_seconds{scope=~"full|incremental"}'),
        ("LedgerFullVerificationStale", 'balance_ledger_last_verified_timestamp_seconds{scope="full"}'),
        ("LedgerFullVerificationMissing", 'balance_ledger_last_verified_timestamp_seconds{scope="full"}'),
        ("LedgerSealStale", "balance_ledger_sealer_last_success_timestamp_seconds"),
        ("LedgerSealMissing", "balance_ledger_sealer_last_success_timestamp_seconds"),
        ("LedgerSealRefused", "balance_ledger_seal_refusals_total"),
    ],
)
def test_each_integrity_alert_exists_and_asks_for_an_exported_metric(alert, metric):
    rule = rules()[alert]
    assert metric in rule["expr"]
    assert metric.split("{")[0] in integrity_names()
    assert rule["labels"]["severity"] in ("page", "ticket") and rule["annotations"]["summary"]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "prometheus-rules.yml"],
        ["test", "rules", "prometheus-rules.test.yml", "prometheus-rules.daily.test.yml"],
    ],
    ids=["check", "unit-tests"],
)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(args):
    """The unit tests (docker/prometheus-rules*.test.yml) fire each integrity alert on the series
    that should fire it, and not before."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    result = subprocess.run([promtool, *args], cwd=DOCKER, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
