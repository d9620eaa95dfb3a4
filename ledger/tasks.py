"""Celery tasks: thin adapters over the integrity services (ledger/integrity_runs.py, ledger/sealing.py).

The beat schedule (balance_project/celery.py): the sealer every few seconds, the incremental
verification every minute, the full one nightly, the reconciliation hourly.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from ledger.integrity_runs import balances_reconcile, integrity_run_verify
from ledger.sealing import SealRefused, journal_seal

log = logging.getLogger(__name__)


@shared_task(name="ledger.verify_ledger")
def verify_ledger_task() -> dict[str, Any]:
    """Verify everything and record an IntegrityRun (what the integrity gauges report)."""
    result = integrity_run_verify()
    result["run"].pop("problems")  # kept on the IntegrityRun row; the result backend needs no copy
    return result


@shared_task(name="ledger.verify_ledger_incremental")
def verify_ledger_incremental_task() -> dict[str, Any]:
    """Verify what came since the last clean run's seal and record an IntegrityRun."""
    result = integrity_run_verify(full=False)
    result["run"].pop("problems")
    return result


@shared_task(name="ledger.seal_journal")
def seal_journal_task() -> dict[str, Any]:
    """Seal the journal records committed since the last round; a refusal is logged at CRITICAL
    by the sealer and answered here, not raised (the next round tries again)."""
    try:
        return journal_seal()
    except SealRefused as refusal:
        return {"refused": str(refusal)}


@shared_task(name="ledger.reconcile_balances")
def reconcile_balances_task() -> dict[str, Any]:
    """Compare every balance with the sum of its entries and record an IntegrityRun."""
    result = balances_reconcile()
    result["run"].pop("problems")
    return result
