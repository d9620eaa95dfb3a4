"""Verify the ledger's checksum chains, balances, transactions and checkpoint.

Exit code 0 when everything verifies, 1 when anything is wrong (a CommandError with returncode 1).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ledger.integrity import ledger_verify


class Command(BaseCommand):
    help = "Verify ledger integrity; exit 1 and list each problem (account, seq) when anything is wrong."

    def add_arguments(self, parser):
        parser.add_argument(
            "--account",
            type=int,
            action="append",
            dest="account_ids",
            metavar="ID",
            help="Verify only this account (repeatable). Default: every account.",
        )
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON.")

    def handle(self, *args, **options):
        as_json = options["json"]
        report = ledger_verify(account_ids=options["account_ids"])
        if as_json:
            self.stdout.write(_dumps(report.as_dict()))
        else:
            checkpoint = f"checkpoint #{report.checkpoint_id}" if report.checkpoint_id else "no checkpoint"
            self.stdout.write(
                f"ledger verification: {report.accounts_checked} accounts, {report.entries_checked} entries, "
                f"{report.transactions_checked} transactions checked against {checkpoint}; "
                f"{report.problem_count} problems"
            )
            for problem in report.problems:
                self.stdout.write(
                    f"{problem['code']} account={_show(problem['account_id'])} seq={_show(problem['seq'])} "
                    f"transaction={_show(problem['transaction_id'])}: {problem['message']}"
                )
            if report.problem_count > len(report.problems):
                self.stdout.write(f"... and {report.problem_count - len(report.problems)} more")
        if not report.ok:
            raise CommandError(f"the ledger does not verify: {report.problem_count} problems", returncode=1)
        if not as_json:
            self.stdout.write(self.style.SUCCESS("ledger verifies"))


def _show(value) -> str:
    return "-" if value is None else str(value)


def _dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
