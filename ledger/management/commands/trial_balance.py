"""Print the trial balance: ``trial_balance [--at 2026-12-01] [--currency EUR] [--json]``.

Exits non-zero when a currency's books do not sum to zero or an account's recorded balance
disagrees with its entries, so a scheduled run can alert.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from balance_project.errors import ApplicationError
from ledger.reports import report_moment_parse, trial_balance


class Command(BaseCommand):
    help = "Ledger totals per currency, account kind and house account, and whether the books balance."

    def add_arguments(self, parser):
        parser.add_argument(
            "--at",
            help="As of this moment (exclusive): YYYY-MM-DD (midnight UTC) or ISO 8601. "
            "Default: now, also checked against the account rows.",
        )
        parser.add_argument("--currency", help="Only this currency, e.g. EUR.")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, at, currency, as_json: bool, **options):
        try:
            report = trial_balance(at=report_moment_parse(at, field="--at") if at else None, currency=currency)
        except ApplicationError as refusal:
            raise CommandError(refusal.message) from refusal
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            self._print(report)
        if not report["balanced"]:
            raise CommandError("the books do not balance: see the report above")

    def _print(self, report) -> None:
        self.stdout.write(f"Trial balance as of {report['at'] or 'now'}")
        if not report["currencies"]:
            self.stdout.write("  no entries")
        for books in report["currencies"]:
            self.stdout.write(f"{books['currency']}: {books['entry_count']} entries")
            for kind, totals in sorted(books["kinds"].items()):
                self.stdout.write(f"  {kind:<8} {totals['accounts']:>8} accounts {totals['total']:>20}")
            for code, total in sorted(books["system_accounts"].items()):
                self.stdout.write(f"  system:{code:<12} {total:>29}")
            self.stdout.write(f"  {'total':<38} {books['total']:>20}")
            if books["accounts_total"] is not None:
                self.stdout.write(f"  {'account rows total':<38} {books['accounts_total']:>20}")
            verdict = "balanced" if books["balanced"] else "NOT BALANCED"
            self.stdout.write(
                f"  {verdict}; recorded balances {'agree' if books['matches_accounts'] else 'DISAGREE'} with entries"
            )
            for mismatch in books["mismatched_accounts"]:
                self.stdout.write(
                    f"    account {mismatch['account_id']}: entries {mismatch['ledger_balance']}, "
                    f"recorded {mismatch['recorded_balance']}"
                )
