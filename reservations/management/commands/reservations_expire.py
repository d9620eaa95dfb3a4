"""Run the expiry sweep once (what the Celery job does every few seconds), e.g. from cron."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from reservations.services import reservation_expire_overdue


class Command(BaseCommand):
    help = "Expire pending reservations past their expiry; prints how many."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="At most this many per run.")

    def handle(self, *args, limit: int, **options):
        expired = reservation_expire_overdue(limit=limit)
        self.stdout.write(f"expired {expired} reservation(s)")
