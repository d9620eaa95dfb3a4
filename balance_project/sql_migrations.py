"""Migration operations for SQL that only PostgreSQL runs (PL/pgSQL functions, triggers).

The file is read when the migration runs, so each file is the state of its migration: change a
function with a new file and a new migration, never by editing a file an applied migration read.
"""
from __future__ import annotations

import re
from pathlib import Path

from django.db import migrations

_FUNCTION_RE = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(", re.IGNORECASE)
_TRIGGER_RE = re.compile(r"CREATE (?:CONSTRAINT )?TRIGGER (\w+)\s.*?\sON (\w+)", re.IGNORECASE | re.DOTALL)


class RunSQLOnPostgres(migrations.RunSQL):
    """RunSQL that runs only on PostgreSQL (PL/pgSQL, triggers); nothing on SQLite."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class RunSQLFileOnPostgres(RunSQLOnPostgres):
    """Runs ``path`` forwards; backwards drops every trigger and function the file creates."""

    def __init__(self, path: Path):
        sql = Path(path).read_text()
        names = _FUNCTION_RE.findall(sql)
        triggers = [f"DROP TRIGGER IF EXISTS {name} ON {table};" for name, table in _TRIGGER_RE.findall(sql)]
        reverse = "\n".join(triggers + [f"DROP FUNCTION IF EXISTS {name} CASCADE;" for name in reversed(names)])
        super().__init__(sql=sql, reverse_sql=reverse)
