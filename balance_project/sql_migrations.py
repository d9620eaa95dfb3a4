"""Migration operations for SQL that only PostgreSQL runs (the triggers that guard the ledger)."""

from __future__ import annotations

from django.db import migrations


class RunSQLOnPostgres(migrations.RunSQL):
    """RunSQL that runs only on PostgreSQL (PL/pgSQL, triggers); nothing on SQLite."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
