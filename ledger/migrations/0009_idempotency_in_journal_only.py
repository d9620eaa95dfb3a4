"""The idempotency records go: each key and its first answer are in the journal record of the call
(unique by scope and key, under the record's MAC), which ledger/idempotency.py answers from."""

from django.db import migrations


def refuse_keys_only_here(apps, schema_editor):
    # A key kept only in the old table would be forgotten, and a retry of it would move money again.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ledger_idempotencyrecord AS record WHERE NOT EXISTS ("
            "SELECT 1 FROM ledger_journalrecord AS journal "
            "WHERE journal.scope = record.scope AND journal.key = record.key)"
        )
        (missing,) = cursor.fetchone()
    if missing:
        raise RuntimeError(
            f"{missing} idempotency records have no journal record of their key; dropping the table would "
            "let a retry of those keys run again. Keep this migration back until they have expired from use."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_seals_replace_checkpoints"),
    ]

    operations = [
        migrations.RunPython(refuse_keys_only_here, migrations.RunPython.noop),
        migrations.DeleteModel(name="IdempotencyRecord"),
    ]
