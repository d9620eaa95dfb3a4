"""Create an API key: `manage.py create_api_key --client cashier --scopes accounts:read,payments:write`.

The key is printed once and only its SHA-256 is stored: copy it now.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.keys import SCOPES, api_key_create
from balance_project.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API key for a client and print it (shown once). Scopes: " + ", ".join(SCOPES)

    def add_arguments(self, parser):
        parser.add_argument("--client", required=True, help="Caller name, e.g. cashier; scopes its idempotency keys.")
        scopes = parser.add_mutually_exclusive_group(required=True)
        scopes.add_argument("--scopes", help="Comma-separated scopes: " + ", ".join(SCOPES))
        scopes.add_argument("--all-scopes", action="store_true", help="Every scope.")

    def handle(self, *args, client: str, scopes: str | None, all_scopes: bool, **options):
        wanted = list(SCOPES) if all_scopes else [scope.strip() for scope in (scopes or "").split(",") if scope.strip()]
        if not wanted:
            raise CommandError("name at least one scope, or pass --all-scopes")
        try:
            raw, record = api_key_create(client=client.strip(), scopes=wanted)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stderr.write(f"API key for {record.client} (prefix {record.prefix}), scopes: {', '.join(record.scopes)}")
        self.stderr.write("It is shown once; only its hash is stored.")
        self.stdout.write(raw)
