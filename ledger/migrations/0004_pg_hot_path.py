"""Once the ledger part of a PL/pgSQL twin of the hot calls; now a no-op.

The rules live once, in the Python services. A database that ran this migration when it still
created functions has them dropped by ledger/0005_one_implementation.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_shard"),
        ("ledger", "0003_postgres_ledger_guards"),
    ]

    operations: list = []
