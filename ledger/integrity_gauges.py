"""Integrity gauges held in the memory of the process that ran the check (the Celery worker).

A gauge read from a database row at scrape time says whatever the row says, and a database insider
can write any row. These are set by the code that just verified the ledger or sealed the journal,
from what it found, and served by that process's own /metrics (the worker's WORKER_METRICS_PORT,
balance_project/celery.py): nothing in the database can move them.

Set by:
- ``verification_recorded(report, scope=...)``: after each verification (ledger/integrity_runs.py
  ``_record`` calls it with what it stored); ``scope`` is ``full``, ``incremental`` or ``reconcile``.
- ``seal_recorded(seal_id, last_position, sealed_at)``: after each run of the sealer that succeeded,
  with the newest seal (also when the run found nothing new to seal: that is what says the sealer
  is alive on a quiet ledger).
- ``sealer_succeeded()``: after a sealer run that did not refuse while there is no seal at all yet.
- ``seal_refused()``: when the sealer refused to seal (the database does not extend the external seal).

Families (a process that never ran a check exports no sample, not a fake 0 or 1):
- ``balance_ledger_integrity_ok{scope}``: 1 when the latest check of that scope found nothing, else 0.
- ``balance_ledger_integrity_problems{scope}``: how many problems it found.
- ``balance_ledger_last_verified_timestamp_seconds{scope}``: when it finished (Unix time), clean or not.
- ``balance_ledger_entries_verified{scope}``: how many entries it walked.
- ``balance_ledger_verified_through_seal{scope}``: the newest seal it verified through.
- ``balance_ledger_last_seal_id``, ``balance_ledger_last_seal_position``,
  ``balance_ledger_last_seal_timestamp_seconds``: the newest seal.
- ``balance_ledger_sealer_last_success_timestamp_seconds``: when the sealer last ran without refusing.
- ``balance_ledger_seal_refusals_total``: how many times it refused.

The registry holds one collector over this module's state; ``register`` (called by
ledger.metrics.register_collector, i.e. from LedgerConfig.ready) adds it once per registry.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import REGISTRY, CollectorRegistry, CounterMetricFamily, GaugeMetricFamily

SCOPES = ("full", "incremental", "reconcile")

OK = (
    "balance_ledger_integrity_ok",
    "1 when the latest ledger check of this scope, run by this process, found nothing.",
)
PROBLEMS = ("balance_ledger_integrity_problems", "Problems found by the latest ledger check of this scope.")
LAST_VERIFIED = (
    "balance_ledger_last_verified_timestamp_seconds",
    "When the latest ledger check of this scope run by this process finished, clean or not (Unix time).",
)
ENTRIES = ("balance_ledger_entries_verified", "Entries walked by the latest ledger check of this scope.")
THROUGH_SEAL = ("balance_ledger_verified_through_seal", "The newest journal seal the latest check verified through.")
SEAL_ID = ("balance_ledger_last_seal_id", "The newest journal seal this process wrote or saw the sealer end on.")
SEAL_POSITION = ("balance_ledger_last_seal_position", "The last journal position the newest seal covers.")
SEAL_AT = ("balance_ledger_last_seal_timestamp_seconds", "When the newest journal seal was made (Unix time).")
SEALER_OK_AT = (
    "balance_ledger_sealer_last_success_timestamp_seconds",
    "When the journal sealer last ran without refusing, whether or not it had records to seal (Unix time).",
)
REFUSALS = (
    "balance_ledger_seal_refusals",
    "Times the sealer refused to seal a state that does not extend the last external seal.",
)

SCOPED_FAMILIES = (OK, PROBLEMS, LAST_VERIFIED, ENTRIES, THROUGH_SEAL)
SEAL_FAMILIES = (SEAL_ID, SEAL_POSITION, SEAL_AT, SEALER_OK_AT)
# Every sample name this module can export (the alert rules' test checks its expressions against it).
EXPORTED_NAMES = frozenset(
    [name for name, _doc in SCOPED_FAMILIES + SEAL_FAMILIES] + [f"{REFUSALS[0]}_total", REFUSALS[0]]
)

_lock = threading.Lock()
_checks: dict[str, dict[str, float | None]] = {}
_seal: dict[str, float] = {}
_refusals = 0
_registered: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def verification_recorded(report: dict[str, Any], *, scope: str) -> None:
    """Publish what a check just found. ``report``: ``ok``, ``problem_count``, ``finished_at``
    (datetime or the ISO text of ``VerificationReport.as_dict``), ``entries_checked`` and, when it
    verified seals, ``through_seal``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown integrity check scope {scope!r}: one of {', '.join(SCOPES)}")
    finished = report.get("finished_at")
    state = {
        OK[0]: 1.0 if report["ok"] else 0.0,
        PROBLEMS[0]: float(report["problem_count"]),
        LAST_VERIFIED[0]: _unix(finished) if finished is not None else time.time(),
        ENTRIES[0]: float(report.get("entries_checked") or 0),
        THROUGH_SEAL[0]: None if report.get("through_seal") is None else float(report["through_seal"]),
    }
    with _lock:
        _checks[scope] = state


def seal_recorded(seal_id: int, last_position: int, sealed_at: datetime) -> None:
    """Publish the newest seal after a sealer run that did not refuse."""
    with _lock:
        _seal.update(
            {
                SEAL_ID[0]: float(seal_id),
                SEAL_POSITION[0]: float(last_position),
                SEAL_AT[0]: sealed_at.timestamp(),
                SEALER_OK_AT[0]: time.time(),
            }
        )


def sealer_succeeded() -> None:
    """The sealer ran without refusing and there is no seal yet (an empty journal): only says it is alive."""
    with _lock:
        _seal[SEALER_OK_AT[0]] = time.time()


def seal_refused() -> None:
    """Count a refusal of the sealer (ledger.sealing.SealRefused)."""
    global _refusals
    with _lock:
        _refusals += 1


class IntegrityGaugesCollector:
    def describe(self) -> list[Any]:
        families: list[Any] = [GaugeMetricFamily(name, doc, labels=["scope"]) for name, doc in SCOPED_FAMILIES]
        families += [GaugeMetricFamily(name, doc) for name, doc in SEAL_FAMILIES]
        families.append(CounterMetricFamily(*REFUSALS))
        return families

    def collect(self) -> Iterator[Any]:
        with _lock:
            checks = {scope: dict(values) for scope, values in _checks.items()}
            seal = dict(_seal)
            refusals = _refusals
        for name, doc in SCOPED_FAMILIES:
            family = GaugeMetricFamily(name, doc, labels=["scope"])
            for scope, values in sorted(checks.items()):
                value = values[name]
                if value is not None:
                    family.add_metric([scope], value)
            if family.samples:
                yield family
        for name, doc in SEAL_FAMILIES:
            if name in seal:
                yield GaugeMetricFamily(name, doc, value=seal[name])
        yield CounterMetricFamily(*REFUSALS, value=refusals)


def register(registry: CollectorRegistry = REGISTRY) -> None:
    with _lock:
        if registry in _registered:
            return
        registry.register(IntegrityGaugesCollector())
        _registered.add(registry)


def reset() -> None:
    """Forget everything (tests: each starts as a process that has checked nothing)."""
    global _refusals
    with _lock:
        _checks.clear()
        _seal.clear()
        _refusals = 0


def _unix(moment: datetime | str) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.timestamp()
