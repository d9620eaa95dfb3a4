"""Export the ledger for a period as CSV: ``export_ledger --from 2026-11-01 --to 2026-12-01``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from balance_project.errors import ApplicationError
from ledger.reports import ledger_export_csv_lines, report_moment_parse


class Command(BaseCommand):
    help = (
        "Write every entry of the transactions created in [--from, --to) as CSV (amounts in integer "
        "minor units) to --output, or to standard output."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="start",
            required=True,
            help="Start, inclusive: YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime.",
        )
        parser.add_argument("--to", dest="end", required=True, help="End, exclusive: same forms as --from.")
        parser.add_argument("--currency", help="Only this currency, e.g. EUR.")
        parser.add_argument("--output", help="File to write (replaced); standard output when absent.")

    def handle(self, *args, start, end, currency, output, **options):
        try:
            lines = ledger_export_csv_lines(
                start=report_moment_parse(start, field="--from"),
                end=report_moment_parse(end, field="--to"),
                currency=currency,
            )
        except ApplicationError as refusal:
            raise CommandError(refusal.message) from refusal
        if output is None:
            for line in lines:
                self.stdout.write(line, ending="")
            return
        count = -1  # the header is not an entry
        with open(output, "w", encoding="utf-8", newline="") as target:
            for line in lines:
                target.write(line)
                count += 1
        self.stderr.write(f"wrote {count} entries to {output}")
