"""Verify the ledger: checksum chains, balances, transactions, and the journal with its seals and
their external anchor (every journaled row held to the journal).

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
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--full", action="store_true", help="Check everything (the default).")
        scope.add_argument(
            "--since-seal",
            type=int,
            metavar="SEAL",
            help="Check only what came after this seal (the journal's records, their rows and entries).",
        )

    def handle(self, *args, **options):
        as_json = options["json"]
        since = options["since_seal"]
        report = ledger_verify(account_ids=options["account_ids"], full=since is None, since_seal=since)
        if as_json:
            self.stdout.write(_dumps(report.as_dict()))
        else:
            sealed = f"through seal {report.through_seal}" if report.through_seal else "with no seal yet"
            self.stdout.write(
                f"ledger verification ({'full' if report.full else f'since seal {since}'}): "
                f"{report.accounts_checked} accounts, {report.entries_checked} entries, "
                f"{report.transactions_checked} transactions, {report.records_checked} journal records, "
                f"{sealed}; {report.problem_count} problems"
            )
            for problem in report.problems:
                journal = " ".join(
                    f"{name}={problem[name]}" for name in ("table", "row_id", "position") if problem[name] is not None
                )
                self.stdout.write(
                    f"{problem['code']} account={_show(problem['account_id'])} seq={_show(problem['seq'])} "
                    f"transaction={_show(problem['transaction_id'])}{' ' + journal if journal else ''}: "
                    f"{problem['message']}"
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
