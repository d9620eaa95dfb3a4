"""Sign and store every chain head, after verifying the whole ledger (refused when it does not)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from balance_project.errors import ApplicationError
from ledger.integrity_runs import ledger_checkpoint_create


class Command(BaseCommand):
    help = "Verify the ledger and sign a checkpoint of every chain head; exit 1 if the ledger does not verify."

    def handle(self, *args, **options):
        try:
            result = ledger_checkpoint_create()
        except ApplicationError as refusal:
            for problem in refusal.details.get("problems", []):
                self.stderr.write(f"{problem['code']}: {problem['message']}")
            raise CommandError(refusal.message, returncode=1) from refusal
        checkpoint = result["checkpoint"]
        self.stdout.write(
            self.style.SUCCESS(
                f"checkpoint #{checkpoint['id']} signed: {checkpoint['account_count']} chains, "
                f"{checkpoint['entry_count']} entries"
            )
        )
