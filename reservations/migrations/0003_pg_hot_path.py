"""Once the reservations part of a PL/pgSQL twin of the hot calls; now a no-op.

The rules live once, in the Python services. A database that ran this migration when it still
created functions has them dropped by ledger/0005_one_implementation.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_pg_hot_path"),
        ("reservations", "0002_release_permission"),
        ("tables", "0001_initial"),
    ]

    operations: list = []
