"""The recorded integrity jobs (what the Celery tasks and commands call): verification, full or
incremental (ledger/integrity.py), and the balance reconciliation. The journal's seals, which
replaced the old checkpoints, are made by ledger/sealing.py.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import BigIntegerField, F, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Account
from ledger import chain, integrity_gauges, integrity_trust
from ledger.integrity import Problem, VerificationReport, ledger_verify, read_snapshot
from ledger.integrity_trust import integrity_run_latest_trusted
from ledger.models import IntegrityRun

log = logging.getLogger(__name__)


def integrity_run_verify(*, account_ids: list[int] | None = None, full: bool = True) -> dict[str, Any]:
    """Verify the ledger (``ledger_verify``) and record the outcome as an ``IntegrityRun``.

    Not ``full``: only what came after the seal the latest trusted run verified through, when that
    run was clean; after a failed (or no, or forged) run it is a full run, so a problem found once
    is found again until it is put right."""
    since = None
    if not full and account_ids is None:
        latest = integrity_run_latest(kind=IntegrityRun.Kind.VERIFY)
        since = latest.through_seal if latest is not None and latest.ok else None
    report = ledger_verify(account_ids=account_ids, full=full, since_seal=since)
    run = _record(IntegrityRun.Kind.VERIFY, report, scope="full" if report.full else "incremental")
    return {"run": integrity_run_result(run)}


def balances_reconcile() -> dict[str, Any]:
    """Compare every account's balance with the sum of its entries (one aggregate query, no
    checksums: cheap enough to run often) and record the outcome as an ``IntegrityRun``."""
    report = VerificationReport(started_at=timezone.now())
    with read_snapshot():
        report.accounts_checked = Account.objects.count()
        report.entries_checked = Account.objects.aggregate(n=Coalesce(Sum("entry_seq"), 0))["n"]
        entries_total = Coalesce(Sum("entries__amount"), Value(0), output_field=BigIntegerField())
        differing = (
            Account.objects.annotate(entries_total=entries_total)
            .exclude(balance=F("entries_total"))
            .order_by("pk")
            .values_list("pk", "balance", "entries_total", "entry_seq")
        )
        for account_id, balance, total, seq in differing.iterator(chunk_size=2000):
            report.add(
                Problem(
                    "balance_mismatch",
                    account_id=account_id,
                    seq=seq or None,
                    message=f"account {account_id}: balance {balance} != {total}, the sum of its entries",
                )
            )
    report.finished_at = timezone.now()
    run = _record(IntegrityRun.Kind.RECONCILE, report)
    return {"run": integrity_run_result(run)}


def integrity_run_latest(*, kind: str = IntegrityRun.Kind.VERIFY) -> IntegrityRun | None:
    """The latest run whose signature verifies (a forged row is never "the latest")."""
    return integrity_run_latest_trusted(kind)


def integrity_run_result(run: IntegrityRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "ok": run.ok,
        "problem_count": run.problem_count,
        "started_at": chain.format_timestamp(run.started_at),
        "finished_at": chain.format_timestamp(run.finished_at),
        "accounts_checked": run.accounts_checked,
        "entries_checked": run.entries_checked,
        "transactions_checked": run.transactions_checked,
        "through_seal": run.through_seal,
        "problems": run.problems,
    }


def _record(kind: str, report: VerificationReport, *, scope: str | None = None) -> IntegrityRun:
    """Store the run signed (ledger/integrity_trust.py) and publish it on this process's gauges
    (ledger/integrity_gauges.py). ``scope``: ``full`` or ``incremental`` (by ``report.full``) for a
    verification, ``reconcile`` for a reconciliation."""
    run = IntegrityRun(
        kind=kind,
        started_at=report.started_at,
        finished_at=report.finished_at or timezone.now(),
        ok=report.ok,
        problem_count=report.problem_count,
        problems=report.problems[: IntegrityRun.PROBLEMS_KEPT],
        accounts_checked=report.accounts_checked,
        entries_checked=report.entries_checked,
        transactions_checked=report.transactions_checked,
        through_seal=getattr(report, "through_seal", None),
    )
    run.signature = integrity_trust.run_signature(run)
    run.save(force_insert=True)
    if scope is None:
        full = getattr(report, "full", True)
        scope = "reconcile" if kind == IntegrityRun.Kind.RECONCILE else ("full" if full else "incremental")
    integrity_gauges.verification_recorded(integrity_run_result(run), scope=scope)
    if report.ok:
        log.info(
            "ledger %s run #%s clean: %s accounts, %s entries",
            kind,
            run.pk,
            report.accounts_checked,
            report.entries_checked,
        )
    else:
        # One log line per problem (capped), so the on-call engineer sees what and where without SQL.
        log.error("ledger %s run #%s found %s problems", kind, run.pk, report.problem_count)
        for problem in report.problems[: IntegrityRun.PROBLEMS_KEPT]:
            log.error("ledger integrity %s: %s", problem["code"], problem["message"])
    return run


def _summary(report: VerificationReport) -> dict[str, Any]:
    data = report.as_dict()
    data.pop("problems")
    return data
