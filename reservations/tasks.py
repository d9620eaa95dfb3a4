"""Celery tasks of the reservations app: thin adapters over the services."""

from __future__ import annotations

from celery import shared_task

from reservations.services import reservation_expire_overdue


@shared_task(name="reservations.expire_overdue_reservations", ignore_result=True)
def expire_overdue_reservations(limit: int = 500) -> int:
    """Expire pending reservations past their expiry (scheduled every few seconds by beat)."""
    return reservation_expire_overdue(limit=limit)
