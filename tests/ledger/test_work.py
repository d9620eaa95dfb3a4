"""The lean data path's unit of work (ledger/work.py): what it writes is exactly what it was given,
whatever the text, and a failed batch leaves nothing and a usable connection."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, connection

from accounts.services import account_deposit
from ledger.models import IdempotencyRecord, Transaction
from ledger.work import Work
from tests.tables.helpers import new_key, new_player

pytestmark = pytest.mark.django_db(transaction=True)  # BEGIN and COMMIT of its own, as in production

AWKWARD = {
    "quote": "O'Brien's \"table\"",
    "injection": "'); DELETE FROM ledger_entry; --",
    "backslashes": "C:\\new\\table\\\\",
    "percent": "100% %s %(x)s %%",
    "unicode": "Zoë 🂡 中文 \u200b",
    "dollars": "$$ $tag$ E'\\x41'",
}


def test_text_of_every_kind_is_written_as_given():
    _, wallet = new_player()
    answer = account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=5, metadata=AWKWARD)
    assert Transaction.objects.get(pk=answer["transaction"]["id"]).metadata == AWKWARD
    record = IdempotencyRecord.objects.get(scope="t", response__transaction__id=answer["transaction"]["id"])
    assert record.response["transaction"]["metadata"] == AWKWARD


@pytest.mark.postgres  # SQLite binds its parameters itself and stores a NUL
def test_a_nul_character_is_refused_before_the_batch_is_sent():
    """PostgreSQL text cannot hold NUL, and in a simple-protocol query a NUL would end the query
    text early: the work refuses it while rendering, so nothing of the batch is sent."""
    with Work() as work:
        work.execute(
            "INSERT INTO ledger_idempotencyrecord (scope, key, operation, request_hash, response, is_error, "
            "created_at) VALUES (%s, %s, 'x', 'h', '{}', false, CURRENT_TIMESTAMP)",
            ["s", "a\x00b"],
        )
        with pytest.raises(DataError):
            work.commit()
    assert not IdempotencyRecord.objects.filter(scope="s").exists()
    _, wallet = new_player()
    assert (
        account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=5)["account"]["balance"] == 5
    )


def test_a_failing_batch_rolls_back_whole_and_the_connection_serves_the_next_work():
    with Work() as work:
        work.execute(
            "INSERT INTO ledger_idempotencyrecord (scope, key, operation, request_hash, response, is_error, "
            "created_at) VALUES (%s, %s, 'x', 'h', '{}', false, CURRENT_TIMESTAMP)",
            ["s", "k1"],
        )
        work.execute(
            "INSERT INTO ledger_idempotencyrecord (scope, key, operation, request_hash, response, is_error, "
            "created_at) VALUES (%s, %s, 'x', 'h', '{}', false, CURRENT_TIMESTAMP)",
            ["s", "k1"],
        )
        with pytest.raises(IntegrityError):
            work.commit()
    assert not IdempotencyRecord.objects.filter(scope="s").exists()
    with Work() as work:
        found = work.query("SELECT COUNT(*) FROM ledger_idempotencyrecord WHERE scope = %s", ["s"])
        work.commit()
    assert found.one()[0] == 0
    if connection.vendor == "postgresql":
        assert connection.connection.info.transaction_status == 0  # idle: nothing left open


def test_a_work_left_without_commit_rolls_back():
    with Work() as work:
        work.execute(
            "INSERT INTO ledger_idempotencyrecord (scope, key, operation, request_hash, response, is_error, "
            "created_at) VALUES ('s', 'k2', 'x', 'h', '{}', false, CURRENT_TIMESTAMP)"
        )
        work.send()
    assert not IdempotencyRecord.objects.filter(scope="s").exists()
