"""The reservations' PL/pgSQL hot-path functions (reservations/sql/0003_hot_path.sql; see ledger/hot_path.py)."""
from pathlib import Path

from django.db import migrations

from balance_project.sql_migrations import RunSQLFileOnPostgres


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0004_pg_hot_path"),
        ("reservations", "0002_release_permission"),
        ("tables", "0001_initial"),
    ]

    operations = [RunSQLFileOnPostgres(Path(__file__).resolve().parents[1] / "sql" / "0003_hot_path.sql")]
