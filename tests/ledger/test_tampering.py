"""The tamper audit of issue #9, as tests: each tamper class, done by a PostgreSQL superuser with
every trigger off (committed, on a connection of its own) on a realistic, twice-sealed ledger
(tests/ledger/tampering.py), is detected by ``ledger_verify(full=True)``, which names the place:
(account_id, seq), (table, row_id) or a journal position. Assertions read those fields, never the
messages. This file: the rows of the books; test_tampering_seals.py: the seals, the journal and
the external anchor.

The insider knows the algorithm (ledger/chain.py, ledger/journal.py) but not LEDGER_HMAC_KEY, and
cannot rewrite the external seal sink (LEDGER_SEAL_SINK, a file under the test's tmp_path).
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger.models import Entry, JournalPosition, JournalRecord, Transaction
from reservations.models import Reservation
from tables.models import Hand, Seat
from tests.ledger.tamper_checks import (
    detected,
    each_edit_named,
    hand_ids,
    names_account,
    names_entry,
    names_position,
    names_row,
    places,
    position_of,
    record_of_key,
    verify,
    world,
)
from tests.ledger.tampering import (
    MONEY_APPS,
    sql,
    superuser,
    tail_rolled_back,
    transaction_deleted,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, available_apps=MONEY_APPS)]


def test_the_untouched_ledger_verifies_clean_and_is_sealed_once(book, sink):
    report = verify()
    assert report.ok, places(report)
    assert len(book.seals) == 2
    records = JournalRecord.objects.count()
    assert records >= 30  # one per operation (build_ledger)
    positions = sorted(JournalPosition.objects.values_list("position", flat=True))
    assert positions == list(range(1, records + 1))  # every record sealed, once
    assert len(sink.read_text().splitlines()) == 2  # one line per seal outside the database
    assert verify().ok  # verifying changes nothing


# --- deletions at the tails, rollbacks -----------------------------------------------------------


@pytest.mark.parametrize("with_its_record", [False, True], ids=["effects", "effects-and-journal-record"])
def test_a_whole_transaction_deleted_at_the_tails_is_named(book, with_its_record):
    """The audit's clean verify: the last transfer, both legs, its row, and the accounts put back
    on their previous entries. Also deleting its journal record (with its idempotency key) and
    position leaves a hole in the sealed order."""
    transaction_id = book.transactions["tail_transfer"]
    record = record_of_key(*book.keys["tail_transfer"])
    position = position_of(record.pk)
    legs = transaction_deleted(transaction_id)
    if with_its_record:
        with superuser() as cursor:
            cursor.execute("DELETE FROM ledger_journalposition WHERE record_id = %s", [record.pk])
            cursor.execute("DELETE FROM ledger_journalrecord WHERE id = %s", [record.pk])
    report = verify()
    detected(report)
    if with_its_record:
        assert names_position(report, position), places(report)
    else:
        for account_id, seq in legs:  # each lost entry where it was: its account and seq
            assert names_entry(report, account_id, seq), (account_id, seq, places(report))


# --- rows no checksum covered before -------------------------------------------------------------


TRANSACTION_EDITS = {  # name: (which transaction, the edit)
    "kind": ("buy_in_alice", "kind = 'transfer'"),
    "metadata-table": ("hand_h1", "metadata = metadata || jsonb_build_object('table_id', 'elsewhere')"),
    "metadata-hand": ("hand_h2", "metadata = metadata || jsonb_build_object('hand_id', 'h99')"),
    "metadata-payouts": ("hand_h3", "metadata = jsonb_set(metadata, '{payouts}', '{}'::jsonb)"),
    "actor": ("adjustment", "actor = 'mallory'"),
    "created_at": ("deposit_alice", "created_at = created_at - interval '400 days'"),
}


def test_an_edited_transaction_is_named(book):
    """Kind, metadata (table, hand, payouts), actor, created_at: one edit at a time."""
    each_edit_named(
        Transaction, {edit: (book.transactions[which], change) for edit, (which, change) in TRANSACTION_EDITS.items()}
    )


def test_an_edited_hand_is_named(book):
    hand = book.hands["h2"]
    edits = {
        "rake": (hand, "rake = rake + 1"),
        "settled_by": (hand, "settled_by = 'mallory'"),
        "response": (hand, "response = jsonb_build_object('forged', true)"),
    }
    each_edit_named(Hand, edits, ids=hand_ids)


def test_held_dropped_under_a_pending_reservation_is_named(book):
    wallet = book.wallets["bob"]
    assert Account.objects.get(pk=wallet).held == 250
    sql("UPDATE accounts_account SET held = 0 WHERE id = %s", [wallet])
    report = verify()
    detected(report)
    assert names_account(report, wallet), places(report)


RESERVATION_EDITS = {  # name: (which reservation, the edit)
    "pending-amount": ("pending", "amount = amount + 1000"),
    "pending-status": ("pending", "status = 'released', ended_at = now(), ended_by = 'mallory'"),
    "committed-amount": ("committed", "amount = amount * 2"),
    "released-status": ("released", "status = 'expired'"),
}


def test_an_edited_reservation_is_named(book):
    each_edit_named(
        Reservation, {edit: (book.reservations[which], change) for edit, (which, change) in RESERVATION_EDITS.items()}
    )


def test_a_rich_wallet_given_to_another_player_is_named(book):
    wallet = book.wallets["alice"]  # erin has no EUR wallet, so she can take this one
    sql("UPDATE accounts_account SET owner_ref = %s WHERE id = %s", [book.user("erin"), wallet])
    report = verify()
    detected(report)
    assert names_account(report, wallet), places(report)


def test_a_seat_with_chips_given_to_another_player_is_named(book):
    seat = Seat.objects.get(table__table_id=book.tables["t1"], user_id=book.user("bob"), status="active")
    assert seat.account.balance > 0
    sql("UPDATE tables_seat SET user_id = %s WHERE id = %s", [book.user("erin"), seat.pk])
    report = verify()
    detected(report)
    assert names_row(report, Seat, seat.pk), places(report)


# --- idempotency keys (in the journal record of their call) -------------------------------------


def retried(book):
    """The sealed deposit again, same key and request, with no cached answer to fall back on."""
    cache.clear()
    return book.retry["call"](**book.retry["kwargs"])


def test_an_edited_idempotency_key_is_named(book):
    """Re-keying the record would let a retry of the key run again: its MAC names it."""
    kwargs = book.retry["kwargs"]
    record = record_of_key(kwargs["client"], kwargs["idempotency_key"])
    sql("UPDATE ledger_journalrecord SET key = key || '-x' WHERE id = %s", [record.pk])
    report = verify()
    detected(report)
    assert names_row(report, JournalRecord, record.pk), places(report)


def test_a_deleted_journal_record_of_a_key_is_named(book):
    """The key's one store gone (a retry of it would then run again): the sealed order has a hole
    where the record was."""
    kwargs = book.retry["kwargs"]
    journaled = record_of_key(kwargs["client"], kwargs["idempotency_key"])
    position = position_of(journaled.pk)
    sql("DELETE FROM ledger_journalrecord WHERE id = %s", [journaled.pk])
    report = verify()
    detected(report)
    assert names_position(report, position) or names_row(report, JournalRecord, journaled.pk), places(report)


@pytest.mark.parametrize("edit", ["transaction-id", "is-error"])
def test_an_edited_stored_response_is_not_returned_on_retry(book, edit):
    kwargs = book.retry["kwargs"]
    record = record_of_key(kwargs["client"], kwargs["idempotency_key"])
    if edit == "transaction-id":
        forged = json.loads(record.response)
        forged["transaction"]["id"] = book.transactions["adjustment"]
        sql("UPDATE ledger_journalrecord SET response = %s WHERE id = %s", [json.dumps(forged), record.pk])
    else:
        sql("UPDATE ledger_journalrecord SET is_error = true WHERE id = %s", [record.pk])
    report = verify()
    detected(report)
    assert names_row(report, JournalRecord, record.pk), places(report)
    before = world()
    with pytest.raises(ApplicationError) as refused:
        retried(book)
    assert refused.value.code == "internal_error"  # never the forged answer, never a second run
    assert world() == before


# --- the books cut, moved ------------------------------------------------------------------------


def test_a_single_leg_cut_from_a_tail_is_named_by_account_and_seq(book):
    dave = book.wallets["dave"]
    seq = Entry.objects.get(transaction_id=book.transactions["tail_transfer"], account_id=dave).seq
    with superuser() as cursor:
        tail_rolled_back(cursor, dave, seq)
    report = verify()
    detected(report)
    assert names_entry(report, dave, seq), places(report)


def test_an_entry_moved_between_accounts_names_both(book):
    """Dave's tail credit (+120) moved to the end of alice's chain, both heads made to match."""
    dave, alice = book.wallets["dave"], book.wallets["alice"]
    moved = Entry.objects.get(transaction_id=book.transactions["tail_transfer"], account_id=dave)
    gained_seq = Account.objects.get(pk=alice).entry_seq + 1
    with superuser() as cursor:
        cursor.execute(
            "UPDATE ledger_entry SET account_id = %(alice)s, seq = %(seq)s, balance_after = "
            "(SELECT balance FROM accounts_account WHERE id = %(alice)s) + amount WHERE id = %(id)s",
            {"alice": alice, "seq": gained_seq, "id": moved.pk},
        )
        cursor.execute(
            "UPDATE accounts_account SET entry_seq = %(seq)s, balance = balance + %(amount)s, chain_head = %(head)s, "
            "version = version + 1 WHERE id = %(alice)s",
            {"alice": alice, "seq": gained_seq, "amount": moved.amount, "head": moved.checksum},
        )
        cursor.execute(
            "UPDATE accounts_account SET entry_seq = %(seq)s - 1, balance = balance - %(amount)s, "
            "version = version - 1, chain_head = "
            "(SELECT checksum FROM ledger_entry WHERE account_id = %(dave)s AND seq = %(seq)s - 1) WHERE id = %(dave)s",
            {"dave": dave, "seq": moved.seq, "amount": moved.amount},
        )
    report = verify()
    detected(report)
    # Both sides where the entry was and where it went (the audit's verifier named only the gaining one).
    assert names_entry(report, dave, moved.seq), ("the losing side", places(report))
    assert names_entry(report, alice, gained_seq), ("the gaining side", places(report))


def test_verify_ledger_exits_1_and_names_the_place(book):
    transaction_id = book.transactions["adjustment"]
    sql("UPDATE ledger_transaction SET actor = 'mallory' WHERE id = %s", [transaction_id])
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", "--full", "--json", stdout=out)
    assert failure.value.returncode == 1
    found = json.loads(out.getvalue())
    assert not found["ok"]
    assert names_row(found["problems"], Transaction, transaction_id), found["problems"]
