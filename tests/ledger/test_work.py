"""The lean data path's unit of work (ledger/work.py): what it writes is exactly what it was given,
whatever the text, and a failed batch leaves nothing and a usable connection."""

from __future__ import annotations

import json

import pytest
from django.db import DataError, IntegrityError, connection

from accounts.cache import balance_cache_get
from accounts.models import Account
from accounts.services import account_deposit
from balance_project.errors import ApplicationError
from ledger.idempotency import idempotent
from ledger.models import JournalRecord, Transaction
from ledger.services import accounts_of, accounts_select, holds_change
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

# A row of a table with a unique key and text columns; never sent to COMMIT (or refused before it).
INSERT_KEYED = (
    "INSERT INTO ledger_journalrecord (txid, scope, key, operation, request_hash, response, is_error, rows, "
    "created_at, mac) VALUES (0, %s, %s, 'x', 'h', '{}', false, '{}', CURRENT_TIMESTAMP, 'm')"
)


def test_text_of_every_kind_is_written_as_given():
    _, wallet = new_player()
    key = new_key()
    answer = account_deposit(client="t", idempotency_key=key, account_id=wallet, amount=5, metadata=AWKWARD)
    assert Transaction.objects.get(pk=answer["transaction"]["id"]).metadata == AWKWARD
    record = JournalRecord.objects.get(scope="t", key=key)
    assert json.loads(record.response)["transaction"]["metadata"] == AWKWARD


@pytest.mark.postgres  # SQLite binds its parameters itself and stores a NUL
def test_a_nul_character_is_refused_before_the_batch_is_sent():
    """PostgreSQL text cannot hold NUL, and in a simple-protocol query a NUL would end the query
    text early: the work refuses it while rendering, so nothing of the batch is sent."""
    with Work() as work:
        work.execute(INSERT_KEYED, ["s", "a\x00b"])
        with pytest.raises(DataError):
            work.commit()
    assert not JournalRecord.objects.filter(scope="s").exists()
    _, wallet = new_player()
    assert (
        account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=5)["account"]["balance"] == 5
    )


def test_a_failing_batch_rolls_back_whole_and_the_connection_serves_the_next_work():
    with Work() as work:
        work.execute(INSERT_KEYED, ["s", "k1"])
        work.execute(INSERT_KEYED, ["s", "k1"])
        with pytest.raises(IntegrityError):
            work.commit()
    assert not JournalRecord.objects.filter(scope="s").exists()
    with Work() as work:
        found = work.query("SELECT COUNT(*) FROM ledger_journalrecord WHERE scope = %s", ["s"])
        work.commit()
    assert found.one()[0] == 0
    if connection.vendor == "postgresql":
        assert connection.connection.info.transaction_status == 0  # idle: nothing left open


def test_a_work_left_without_commit_rolls_back():
    with Work() as work:
        work.execute(INSERT_KEYED, ["s", "k2"])
        work.send()
    assert not JournalRecord.objects.filter(scope="s").exists()


def test_a_refusal_after_a_row_changed_in_memory_feeds_no_cache_and_keeps_its_record():
    """The refusal drops the queued writes and what was to follow them after commit: the balance
    cache never learns of a hold that was not committed."""
    _, wallet = new_player(funded=100)
    cached_before = balance_cache_get(wallet)

    def execute(work):
        found = accounts_select(work, "id = %s", [wallet])
        work.send()
        holds_change(work, accounts=accounts_of(found), hold_deltas={wallet: 50})
        raise ApplicationError("insufficient_funds", "refused after a change in memory", {})

    key = new_key()
    with pytest.raises(ApplicationError):
        idempotent(scope="t", key=key, operation="test", params={}, execute=execute)
    assert Account.objects.get(pk=wallet).held == 0
    assert balance_cache_get(wallet) == cached_before and (cached_before is None or cached_before["held"] == 0)
    assert JournalRecord.objects.get(scope="t", key=key).is_error
