"""The tables' PL/pgSQL hot-path functions (tables/sql/0002_hot_path.sql; see ledger/hot_path.py)."""
from pathlib import Path

from django.db import migrations

from balance_project.sql_migrations import RunSQLFileOnPostgres


class Migration(migrations.Migration):

    dependencies = [
        ("reservations", "0003_pg_hot_path"),
        ("tables", "0001_initial"),
    ]

    operations = [RunSQLFileOnPostgres(Path(__file__).resolve().parents[1] / "sql" / "0002_hot_path.sql")]
