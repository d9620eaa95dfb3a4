"""A daily finance report: ``finance_report player-liability --date 2026-12-01 [--format jsonl]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from balance_project.errors import ApplicationError
from ledger.liability_reports import REPORT_FORMATS, REPORTS, report_stream


class Command(BaseCommand):
    help = (
        "Write a daily report of the UTC day --date: player-liability (per currency: wallets, seat chips "
        "and holds, with the day's movements), player-activity (every player wallet, N.J.A.C. 13:69O-1.9, "
        "with or without activity) or protection-audit (limit changes and exclusions). CSV or JSONL; "
        "amounts in integer minor units with a decimal twin."
    )

    def add_arguments(self, parser):
        parser.add_argument("report", choices=sorted(REPORTS))
        parser.add_argument("--date", required=True, help="The UTC day, YYYY-MM-DD.")
        parser.add_argument("--format", dest="fmt", choices=REPORT_FORMATS, default="csv")
        parser.add_argument("--currency", help="Only this currency, e.g. EUR.")
        parser.add_argument("--output", help="File to write (replaced); standard output when absent.")

    def handle(self, *args, report, date, fmt, currency, output, **options):
        try:
            lines = report_stream(report=report, day=date, fmt=fmt, currency=currency)
        except ApplicationError as refusal:
            raise CommandError(refusal.message) from refusal
        if output is None:
            for line in lines:
                self.stdout.write(line, ending="")
            return
        count = 0
        with open(output, "w", encoding="utf-8", newline="") as target:
            for line in lines:
                target.write(line)
                count += 1
        self.stderr.write(f"wrote {count} lines to {output}")
