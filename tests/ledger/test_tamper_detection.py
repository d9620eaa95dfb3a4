"""Tampering by direct SQL is found by ledger_verify and by `verify_ledger`, naming account and seq.

On PostgreSQL the guard triggers are bypassed as a superuser would (session_replication_role);
on SQLite raw SQL goes straight through.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from accounts.services import account_deposit
from ledger.integrity import ledger_verify
from ledger.models import Entry, JournalSeal
from ledger.sealing import SealRefused, journal_seal
from tests.ledger.conftest import balance_tampered, codes, entry, found, triggers_bypassed

pytestmark = pytest.mark.django_db


def command_finds(*expected: tuple[str, int, int]) -> str:
    """Run `verify_ledger`: it must exit 1 and print each (code, account, seq) on a line."""
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", stdout=out)
    assert failure.value.returncode == 1
    text = out.getvalue()
    for code, account_id, seq in expected:
        assert f"{code} account={account_id} seq={seq} " in text, text
    return text


def test_untouched_books_verify_clean(books):
    report = ledger_verify()
    assert report.ok, report.problems
    assert report.accounts_checked == 3  # A, B and the external-funds account
    assert report.entries_checked == Entry.objects.count()
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "0 problems" in out.getvalue()


def test_edited_amount_is_a_checksum_mismatch_at_that_seq(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount = amount - 1000 WHERE account_id = %s AND seq = 3", [a])
    report = ledger_verify()
    assert ("checksum_mismatch", a, 3) in found(report)
    assert ("balance_after_mismatch", a, 3) in found(report)
    assert ("balance_mismatch", a, 6) in found(report)
    assert "transaction_unbalanced" in codes(report)
    # Nothing else in the chain is blamed: entry 4 still links to entry 3's stored checksum.
    assert not {p for p in found(report) if p[0] == "checksum_mismatch"} - {("checksum_mismatch", a, 3)}
    command_finds(("checksum_mismatch", a, 3))


def test_edited_balance_after_is_found_at_that_seq(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_entry SET balance_after = 999999 WHERE account_id = %s AND seq = 2", [a])
    report = ledger_verify()
    assert {("checksum_mismatch", a, 2), ("balance_after_mismatch", a, 2), ("balance_after_mismatch", a, 3)} <= found(
        report
    )
    command_finds(("checksum_mismatch", a, 2))


def test_deleted_entry_is_a_sequence_gap_at_its_seq(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_entry WHERE account_id = %s AND seq = 4", [a])
    report = ledger_verify()
    assert ("sequence_gap", a, 4) in found(report)
    assert ("balance_mismatch", a, 6) in found(report)
    assert "transaction_unbalanced" in codes(report)
    # The entry after the gap cannot be linked, so it is not blamed for the missing one.
    assert ("checksum_mismatch", a, 5) not in found(report)
    command_finds(("sequence_gap", a, 4))


def test_deleted_tail_entry_is_a_gap_at_the_end(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_entry WHERE account_id = %s AND seq = 6", [a])
    report = ledger_verify()
    assert ("sequence_gap", a, 6) in found(report)
    command_finds(("sequence_gap", a, 6))


def test_inserted_entry_breaks_the_chain_where_it_sits(books):
    a, b = books["a"], books["b"]
    last = entry(a, 6)
    with triggers_bypassed() as cursor:
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, "
            "created_at, checksum) VALUES (%s, %s, 7, 5000, 'EUR', %s, %s, %s)",
            [last.transaction_id, a, last.balance_after + 5000, last.created_at, "f" * 64],
        )
    report = ledger_verify()
    assert ("checksum_mismatch", a, 7) in found(report)
    assert ("chain_head_mismatch", a, 7) in found(report)
    assert ("balance_mismatch", a, 7) in found(report)
    assert "transaction_unbalanced" in codes(report)
    assert not [p for p in report.problems if p["account_id"] == b]
    command_finds(("checksum_mismatch", a, 7))


def test_inserted_entry_with_renumbered_successors_is_found_at_the_insertion(books):
    a = books["a"]
    donor = entry(a, 2)
    with triggers_bypassed() as cursor:
        for seq in range(6, 2, -1):  # make room at seq 3, top down so seqs stay unique
            cursor.execute("UPDATE ledger_entry SET seq = seq + 1 WHERE account_id = %s AND seq = %s", [a, seq])
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, "
            "created_at, checksum) VALUES (%s, %s, 3, 1, 'EUR', %s, %s, %s)",
            [donor.transaction_id, a, donor.balance_after + 1, donor.created_at, donor.checksum],
        )
    report = ledger_verify()
    mismatches = sorted(p[2] for p in found(report) if p[0] == "checksum_mismatch")
    assert mismatches[0] == 3
    assert ("chain_head_mismatch", a, 7) in found(report)
    command_finds(("checksum_mismatch", a, 3))


@pytest.mark.parametrize("first,second", [(2, 4), (3, 4), (5, 6)])
def test_swapped_entries_are_reported_as_reordered_at_both_seqs(books, first, second):
    a = books["a"]
    with triggers_bypassed() as cursor:
        for old, new in ((first, 10**9), (second, first), (10**9, second)):
            cursor.execute("UPDATE ledger_entry SET seq = %s WHERE account_id = %s AND seq = %s", [new, a, old])
    report = ledger_verify()
    assert found(report) == {("entry_reordered", a, first), ("entry_reordered", a, second)}, report.problems
    command_finds(("entry_reordered", a, first), ("entry_reordered", a, second))


def test_edited_account_balance_differs_from_its_entries(books):
    a = books["a"]
    balance_tampered([a], 10**6)
    report = ledger_verify()
    assert found(report) == {("balance_mismatch", a, 6), ("row_mismatch", a, None)}
    command_finds(("balance_mismatch", a, 6))


def test_entry_in_another_currency_is_found(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_entry SET currency = 'USD' WHERE account_id = %s AND seq = 2", [a])
    report = ledger_verify()
    assert {("currency_mismatch", a, 2), ("transaction_currency_mismatch", a, 2), ("checksum_mismatch", a, 2)} <= found(
        report
    )


def test_truncated_tail_with_account_rows_fixed_to_match_is_caught_by_the_journal(books, key):
    a = books["a"]
    account_deposit(client="t", idempotency_key=key(), account_id=a, amount=400)
    external = Account.objects.get(kind="system", system_code="external", currency="EUR").pk  # one shard (books)
    journal_seal()
    cut = {account_id: Account.objects.get(pk=account_id).entry_seq for account_id in (a, external)}

    # Remove the deposit whole (both legs) and rewrite each account row to its new last entry:
    # every chain, balance and transaction then looks consistent on its own.
    with triggers_bypassed() as cursor:
        for account_id, seq in cut.items():
            cursor.execute("DELETE FROM ledger_entry WHERE account_id = %s AND seq = %s", [account_id, seq])
            previous = entry(account_id, seq - 1)
            cursor.execute(
                "UPDATE accounts_account SET entry_seq = %s, chain_head = %s, balance = %s WHERE id = %s",
                [seq - 1, previous.checksum, previous.balance_after, account_id],
            )
    report = ledger_verify()
    assert found(report) == {
        ("row_mismatch", a, None),
        ("row_mismatch", external, None),
        ("sequence_gap", a, cut[a]),  # each lost entry named where it was
        ("sequence_gap", external, cut[external]),
    }
    command_finds(("row_mismatch", a, "-"))

    # Deleting the journal and its seals as well leaves the database short of the external seal.
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_journalposition")
        cursor.execute("DELETE FROM ledger_journalseal")
        cursor.execute("DELETE FROM ledger_journalrecord")
    assert codes(ledger_verify()) >= {"seal_missing", "row_not_journaled"}


def test_rewritten_head_entry_is_found(books):
    a = books["a"]
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_entry SET checksum = %s WHERE account_id = %s AND seq = 6", ["0" * 64, a])
    report = ledger_verify()
    assert {("checksum_mismatch", a, 6), ("chain_head_mismatch", a, 6)} <= found(report)


def test_an_edited_seal_fails_its_mac_and_is_named(books):
    journal_seal()
    with triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_journalseal SET head = %s", ["0" * 64])
    report = ledger_verify()
    assert {(p["code"], p["table"], p["row_id"]) for p in report.problems} >= {
        ("seal_invalid", "ledger_journalseal", "1"),
        ("seal_mismatch", "ledger_journalseal", "1"),
    }
    command_finds()


def test_the_sealer_refuses_a_database_that_does_not_reach_the_external_seal(books, key):
    journal_seal()
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_journalposition")
        cursor.execute("DELETE FROM ledger_journalseal")
    account_deposit(client="t", idempotency_key=key(), account_id=books["a"], amount=5)
    with pytest.raises(SealRefused, match="has seal 1"):
        journal_seal()
    assert not JournalSeal.objects.exists()


def test_verifying_some_accounts_looks_only_at_them(books):
    a, b = books["a"], books["b"]
    balance_tampered([a], 1)
    assert ledger_verify(account_ids=[b]).ok
    only_a = ledger_verify(account_ids=[a])
    assert found(only_a) == {("balance_mismatch", a, 6)}
    assert only_a.accounts_checked == 1 and only_a.entries_checked == 6
    out = StringIO()
    call_command("verify_ledger", "--account", str(b), stdout=out)
    with pytest.raises(CommandError):
        call_command("verify_ledger", "--account", str(a), stdout=out)


def test_deleted_account_row_is_found_by_its_orphaned_entries_and_the_journal(books):
    b = books["b"]
    with triggers_bypassed() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA defer_foreign_keys = ON")  # the test's own transaction checks them at the end
        cursor.execute("DELETE FROM accounts_account WHERE id = %s", [b])
    report = ledger_verify()
    assert {("account_missing", b, 1), ("row_missing", b, None)} <= found(report)
    assert report.entries_checked == Entry.objects.count()
    command_finds(("account_missing", b, 1))
    with triggers_bypassed() as cursor:  # put it back so the test database stays consistent
        cursor.execute(
            "INSERT INTO accounts_account (id, kind, owner_ref, system_code, currency, balance, held, "
            "allow_negative, status, version, entry_seq, chain_head, created_at, updated_at) "
            "VALUES (%s, 'user', 'restored', '', 'EUR', 0, 0, %s, 'active', 0, 0, '', %s, %s)",
            [b, False, timezone.now(), timezone.now()],
        )


def test_the_seal_and_verify_commands(books, key):
    out = StringIO()
    call_command("seal_journal", stdout=out)
    assert out.getvalue().startswith("seal 1: ")
    call_command("seal_journal", stdout=out)
    assert "nothing to seal" in out.getvalue()
    account_deposit(client="t", idempotency_key=key(), account_id=books["a"], amount=7)
    call_command("seal_journal", stdout=out)
    assert "seal 2: 1 records" in out.getvalue()
    call_command("verify_ledger", "--since-seal", "1", stdout=out)
    assert "(since seal 1)" in out.getvalue() and "1 journal records" in out.getvalue()

    with triggers_bypassed() as cursor:  # the newest seal gone: the database no longer reaches the sink
        cursor.execute("DELETE FROM ledger_journalposition WHERE seal_id = 2")
        cursor.execute("DELETE FROM ledger_journalseal WHERE id = 2")
    with pytest.raises(CommandError) as refused:
        call_command("seal_journal", stdout=StringIO())
    assert refused.value.returncode == 1 and "has seal 2" in str(refused.value)
    with pytest.raises(CommandError):
        call_command("verify_ledger", "--since-seal", "1", stdout=StringIO())
