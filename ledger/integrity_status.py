"""Whether the ledger is known to verify right now, as the admin's red banner tells staff.

Built only on signed integrity runs (ledger/integrity_trust.py): a forged row never makes the books
look clean, it is itself a reason for the banner. The banner is up while any of these holds:

- the latest trusted verification (or reconciliation) found problems: they are named, the first
  ``PROBLEMS_SHOWN`` with their place (account and seq, transaction, table and row, journal position);
- a row newer than it claims to be a run but is forged (bad or missing signature, dated in the future);
- there is no trusted verification, or the latest is older than ``verification_stale_after()``
  (deleting the newer, failing runs leaves an older clean one: it shows as stale here).

Read-only; a handful of indexed queries (two per run kind when nothing is forged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ledger import chain
from ledger.integrity_trust import RunTrust, integrity_run_trust
from ledger.models import IntegrityRun

PROBLEMS_SHOWN = 5
FORGED_SHOWN = 3
# The incremental verification runs every minute: five minutes without one is not a hiccup.
VERIFICATION_STALE_AFTER = timedelta(minutes=5)
# Not the kind's display name: a "verify" run may be full or incremental.
KIND_NAMES: dict[str, str] = {
    IntegrityRun.Kind.VERIFY: "ledger verification",
    IntegrityRun.Kind.RECONCILE: "balance reconciliation",
}
VERIFY_TASKS = "ledger.verify_ledger"  # the full and the incremental job


@dataclass
class IntegrityAlert:
    reasons: list[str] = field(default_factory=list)  # one sentence each: what is wrong
    problems: list[str] = field(default_factory=list)  # the first problems found, with their place
    more_problems: int = 0  # found but not listed

    def __bool__(self) -> bool:
        return bool(self.reasons)


def verification_stale_after() -> timedelta:
    """How old the latest trusted verification may be: VERIFICATION_STALE_AFTER, or two intervals
    of the most frequent beat job that verifies (``ledger.verify_ledger*``: the incremental one
    every minute) when that is longer, since one run missed is not yet an alarm."""
    from balance_project.celery import PERIODIC_JOBS

    every = [seconds for task, seconds in PERIODIC_JOBS.values() if task.startswith(VERIFY_TASKS)]
    return max(VERIFICATION_STALE_AFTER, timedelta(seconds=2 * min(every))) if every else VERIFICATION_STALE_AFTER


def integrity_alert(*, now: datetime | None = None) -> IntegrityAlert:
    """What the banner says; falsy when the ledger is known to verify."""
    now = now or timezone.now()
    alert = IntegrityAlert()
    trusts = {kind: integrity_run_trust(kind, now=now) for kind in IntegrityRun.Kind.values}
    for trust in trusts.values():
        _forged(alert, trust)
    verify = trusts[IntegrityRun.Kind.VERIFY]
    if verify.latest is None:
        alert.reasons.append("No trusted ledger verification is on record: the ledger is not known to verify.")
    else:
        age = now - verify.latest.finished_at
        if age > verification_stale_after():
            alert.reasons.append(
                f"The latest trusted ledger verification (run #{verify.latest.pk}) finished "
                f"{chain.format_timestamp(verify.latest.finished_at)}, {_minutes(age)} ago: verification is stale."
            )
    for trust in trusts.values():
        _failed(alert, trust)
    return alert


def problem_line(problem: dict[str, Any]) -> str:
    """``code at place: message``, the place from whichever of its fields the problem has."""
    place = problem_place(problem)
    code = problem.get("code", "problem")
    head = f"{code} at {place}" if place else str(code)
    return f"{head}: {problem.get('message', '')}"


def problem_place(problem: dict[str, Any]) -> str:
    parts = []
    if problem.get("account_id") is not None:
        seq = problem.get("seq")
        parts.append(f"account {problem['account_id']}" + (f" seq {seq}" if seq is not None else ""))
    if problem.get("table"):
        row = problem.get("row_id")
        parts.append(f"table {problem['table']}" + (f" row {row}" if row is not None else ""))
    if problem.get("position") is not None:
        parts.append(f"journal position {problem['position']}")
    if problem.get("transaction_id") is not None:
        parts.append(f"transaction {problem['transaction_id']}")
    return ", ".join(parts)


def _forged(alert: IntegrityAlert, trust: RunTrust) -> None:
    if not trust.forged_count:
        return
    shown = "; ".join(run.message for run in trust.forged[:FORGED_SHOWN])
    more = trust.forged_count - min(len(trust.forged), FORGED_SHOWN)
    alert.reasons.append(
        f"{trust.forged_count} forged {trust.kind} run record(s), not trusted: {shown}"
        + (f" (and {more} more)" if more > 0 else "")
        + "."
    )
    if trust.scan_exhausted:
        alert.reasons.append(f"No trusted {trust.kind} run was found among the newest forged ones.")


def _failed(alert: IntegrityAlert, trust: RunTrust) -> None:
    run = trust.latest
    if run is None or run.ok:
        return
    alert.reasons.append(
        f"The latest trusted {KIND_NAMES.get(run.kind, run.kind)} (run #{run.pk}, finished "
        f"{chain.format_timestamp(run.finished_at)}) found {run.problem_count} problem(s)."
    )
    room = PROBLEMS_SHOWN - len(alert.problems)
    listed = [problem_line(problem) for problem in run.problems[: max(room, 0)]]
    alert.problems.extend(listed)
    alert.more_problems += run.problem_count - len(listed)


def _minutes(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
