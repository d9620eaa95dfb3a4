"""The ledger's PL/pgSQL hot-path functions (ledger/sql/0004_hot_path.sql; see ledger/hot_path.py)."""
from pathlib import Path

from django.db import migrations

from balance_project.sql_migrations import RunSQLFileOnPostgres


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_account_shard"),
        ("ledger", "0003_postgres_ledger_guards"),
    ]

    operations = [RunSQLFileOnPostgres(Path(__file__).resolve().parents[1] / "sql" / "0004_hot_path.sql")]
