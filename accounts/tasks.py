"""Periodic jobs of the accounts app (scheduled in balance_project/celery.py)."""

from __future__ import annotations

from celery import shared_task

from accounts.adjustments import adjustment_proposals_expire


@shared_task(name="accounts.expire_adjustment_proposals")
def expire_adjustment_proposals() -> int:
    """Mark four-eyes proposals past their expiry as expired; approval refuses them anyway."""
    return adjustment_proposals_expire()
