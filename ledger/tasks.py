"""Celery tasks: thin adapters over the integrity services (ledger/integrity_runs.py).

Suggested beat schedule: verify_ledger_task every 10 minutes, reconcile_balances_task every minute,
ledger_checkpoint_task hourly.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from balance_project.errors import ApplicationError
from ledger.integrity_runs import balances_reconcile, integrity_run_verify, ledger_checkpoint_create

log = logging.getLogger(__name__)


@shared_task(name="ledger.verify_ledger")
def verify_ledger_task() -> dict[str, Any]:
    """Verify every chain and record an IntegrityRun (what the integrity metrics report)."""
    result = integrity_run_verify()
    result["run"].pop("problems")  # kept on the IntegrityRun row; the result backend needs no copy
    return result


@shared_task(name="ledger.checkpoint")
def ledger_checkpoint_task() -> dict[str, Any]:
    """Sign a checkpoint of every chain head; refused (and logged) while the ledger does not verify."""
    try:
        return ledger_checkpoint_create()
    except ApplicationError as refusal:
        log.error("ledger checkpoint refused: %s", refusal.message)
        return {"error": refusal.as_dict()}


@shared_task(name="ledger.reconcile_balances")
def reconcile_balances_task() -> dict[str, Any]:
    """Compare every balance with the sum of its entries and record an IntegrityRun."""
    result = balances_reconcile()
    result["run"].pop("problems")
    return result
