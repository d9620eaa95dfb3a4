"""The admin's red banner: on every page while the ledger is not known to verify, naming the problems.

Built on signed runs only (ledger/integrity_status.py): a failed verification names its first
problems with their place; a forged "ok" row dated 2036 does not hide it, and is itself named;
a clean run that is too old, or none at all, shows as not verified.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ledger import integrity_status
from ledger.integrity_runs import integrity_run_verify
from ledger.integrity_trust import run_signature
from ledger.models import IntegrityRun
from tests.ledger.conftest import balance_tampered
from tests.ops.test_integrity_monitoring import FAR_FUTURE, insert_run_by_sql

pytestmark = pytest.mark.django_db

PAGES = ["/admin/", "/admin/accounts/account/", "/admin/ledger/integrityrun/"]


def banner(client: Client, url: str = "/admin/") -> str | None:
    response = client.get(url)
    assert response.status_code == 200, url
    match = re.search(r'<div id="integrity-alert" role="alert">(.*?)</div>', response.content.decode(), re.S)
    return html.unescape(re.sub(r"\s+", " ", match.group(1))) if match else None


def signed_run(*, ok: bool = True, age: timedelta = timedelta(0), problems=None) -> IntegrityRun:
    finished = timezone.now() - age
    problems = problems or []
    run = IntegrityRun(
        kind="verify", started_at=finished, finished_at=finished, ok=ok, problem_count=len(problems), problems=problems
    )
    run.signature = run_signature(run)
    run.save()
    return run


def test_a_clean_recent_verification_shows_no_banner(admin, wallet):
    wallet(funded=100)
    assert integrity_run_verify()["run"]["ok"]
    for page in PAGES:
        assert banner(admin, page) is None


def test_a_failed_verification_shows_the_banner_on_every_page_naming_its_problems(admin, wallet):
    tampered = wallet(funded=100)
    balance_tampered([tampered], 1)
    run = IntegrityRun.objects.get(pk=integrity_run_verify()["run"]["id"])
    assert not run.ok
    for page in PAGES:
        text = banner(admin, page)
        assert text is not None, page
        assert f"run #{run.pk}" in text and f"found {run.problem_count} problem(s)" in text
        assert f"balance_mismatch at account {tampered} seq 1" in text


def test_a_forged_ok_row_dated_2036_does_not_hide_the_failure_and_is_named(admin, wallet):
    tampered = wallet(funded=100)
    balance_tampered([tampered], 1)
    failed = integrity_run_verify()["run"]
    forged = insert_run_by_sql(ok=True, finished_at=FAR_FUTURE, signature="f" * 64)
    text = banner(admin)
    assert text is not None
    assert f"verify run #{forged} (ok, finished 2036-01-01T12:00:00.000000Z) has no valid signature" in text
    assert f"run #{failed['id']}" in text and f"balance_mismatch at account {tampered}" in text


def test_forged_rows_alone_leave_the_ledger_unverified(admin):
    insert_run_by_sql(ok=True, finished_at=FAR_FUTURE)
    text = banner(admin)
    assert text is not None
    assert "forged verify run record(s)" in text and "No trusted ledger verification is on record" in text


def test_no_verification_or_a_stale_one_shows_the_banner(admin):
    assert "No trusted ledger verification is on record" in banner(admin)
    old = signed_run(age=integrity_status.verification_stale_after() + timedelta(minutes=1))
    text = banner(admin)
    assert f"run #{old.pk}" in text and "verification is stale" in text
    signed_run(age=timedelta(seconds=5))
    assert banner(admin) is None


def test_problems_are_listed_up_to_a_few_with_their_place(admin):
    problems = [
        {"code": "row_mismatch", "table": "tables_seat", "row_id": 7, "message": "seat 7 differs"},
        {"code": "journal_gap", "position": 42, "message": "position 42 is missing"},
        {"code": "transaction_unbalanced", "transaction_id": 9, "message": "transaction 9 sums to 5"},
    ] + [{"code": "balance_mismatch", "account_id": n, "seq": n, "message": f"account {n}"} for n in range(10, 20)]
    signed_run(ok=False, problems=problems)
    text = banner(admin)
    assert "row_mismatch at table tables_seat row 7: seat 7 differs" in text
    assert "journal_gap at journal position 42" in text
    assert "transaction_unbalanced at transaction 9" in text
    assert "balance_mismatch at account 11 seq 11" in text and "account 12 seq 12" not in text
    assert f"and {len(problems) - integrity_status.PROBLEMS_SHOWN} more" in text


def test_the_login_page_tells_a_visitor_nothing(db):
    insert_run_by_sql(ok=True, finished_at=FAR_FUTURE)
    response = Client().get("/admin/login/")
    assert response.status_code == 200 and b'id="integrity-alert"' not in response.content


def test_staleness_follows_the_most_frequent_verifying_job(monkeypatch):
    from balance_project import celery

    monkeypatch.setattr(
        celery,
        "PERIODIC_JOBS",
        {"full": ("ledger.verify_ledger", 86400.0), "incremental": ("ledger.verify_ledger_incremental", 60.0)},
    )
    assert integrity_status.verification_stale_after() == timedelta(minutes=5)
    monkeypatch.setattr(celery, "PERIODIC_JOBS", {"only": ("ledger.verify_ledger", 600.0)})
    assert integrity_status.verification_stale_after() == timedelta(minutes=20)
    monkeypatch.setattr(celery, "PERIODIC_JOBS", {})
    assert integrity_status.verification_stale_after() == timedelta(minutes=5)
