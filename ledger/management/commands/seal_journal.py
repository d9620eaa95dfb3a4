"""Seal the journal now (what beat's ``ledger.seal_journal`` does every few seconds).

Exit code 1 when the sealer refuses: the database does not extend the newest external seal.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ledger.sealing import SealRefused, journal_seal


class Command(BaseCommand):
    help = "Seal every committed journal record not sealed yet, and append the seal to LEDGER_SEAL_SINK."

    def handle(self, *args, **options):
        try:
            result = journal_seal()
        except SealRefused as refusal:
            raise CommandError(f"the journal was not sealed: {refusal}", returncode=1) from refusal
        if result["seal"] is None:
            self.stdout.write(f"nothing to seal ({result['anchored']} seals appended to the sink)")
        else:
            self.stdout.write(f"seal {result['seal']}: {result['records']} records")
