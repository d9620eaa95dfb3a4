"""PostgreSQL itself refuses writes that skip the ORM and would break the books (migration 0003)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger.models import Entry, Transaction
from tests.ledger.conftest import entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def refused(sql: str, params=(), *, at_commit: bool = False) -> str:
    """Run ``sql`` in a savepoint and return the database's refusal. ``at_commit`` also runs the
    deferred checks, as COMMIT would."""
    with pytest.raises(IntegrityError) as refusal:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            if at_commit:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return str(refusal.value)


def accepted(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def committed_books(books):
    """The books with their deferred checks already run, as after a real commit."""
    accepted("SELECT 1")
    return books


def test_entries_cannot_be_updated_or_deleted(committed_books):
    a = committed_books["a"]
    assert "append-only" in refused("UPDATE ledger_entry SET amount = 1 WHERE account_id = %s AND seq = 2", [a])
    assert "append-only" in refused("UPDATE ledger_entry SET checksum = 'x' WHERE account_id = %s", [a])
    assert "append-only" in refused("DELETE FROM ledger_entry WHERE account_id = %s AND seq = 6", [a])
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.filter(account_id=a).update(balance_after=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.filter(account_id=a).delete()
    assert Entry.objects.filter(account_id=a).count() == 6


def test_entries_cannot_be_truncated_while_the_books_remain(committed_books):
    assert "TRUNCATE" in refused("TRUNCATE ledger_entry")
    assert Entry.objects.count() > 0


def test_wiping_the_whole_books_in_one_statement_is_allowed(committed_books):
    # What a test-database flush does; nothing is left with a shortened history.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE ledger_entry, ledger_transaction, ledger_journalrecord, ledger_journalposition, "
            "ledger_journalseal, accounts_account CASCADE"
        )
        assert Entry.objects.count() == 0
        transaction.set_rollback(True)


def test_an_unbalanced_leg_is_refused_at_commit(committed_books):
    a, b = committed_books["a"], committed_books["b"]
    leg = entry(a, 6)
    message = refused(
        "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, created_at, "
        "checksum) VALUES (%s, %s, 7, 25, 'EUR', %s, %s, 'x')",
        [leg.transaction_id, a, leg.balance_after + 25, timezone.now()],
        at_commit=True,
    )
    assert f"transaction {leg.transaction_id} does not balance" in message
    assert Entry.objects.filter(account_id=a).count() == 6
    # The same write balanced by a second leg in the same transaction passes the trigger.
    tx = Transaction.objects.create(kind="adjustment", currency="EUR", actor="test")
    accepted(
        "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, created_at, "
        "checksum) VALUES (%s, %s, 7, 25, 'EUR', 0, %s, 'x'), (%s, %s, 7, -25, 'EUR', 0, %s, 'x')",
        [tx.pk, a, timezone.now(), tx.pk, b, timezone.now()],
    )


def test_an_entry_in_another_currency_is_refused(committed_books):
    a, b = committed_books["a"], committed_books["b"]
    usd = Transaction.objects.create(kind="adjustment", currency="USD", actor="test")
    eur = Transaction.objects.create(kind="adjustment", currency="EUR", actor="test")
    legs = (
        "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, "
        "created_at, checksum) VALUES (%s, %s, 7, 5, %s, 0, now(), 'x'), (%s, %s, 7, -5, %s, 0, now(), 'x')"
    )
    assert "its transaction" in refused(legs, [usd.pk, a, "EUR", usd.pk, b, "EUR"], at_commit=True)
    assert "its account" in refused(legs, [usd.pk, a, "USD", usd.pk, b, "USD"], at_commit=True)
    accepted(legs, [eur.pk, a, "EUR", eur.pk, b, "EUR"])


def test_a_transaction_keeps_its_kind_and_currency_and_entries(committed_books):
    tx_id = entry(committed_books["a"], 2).transaction_id
    assert "cannot change" in refused("UPDATE ledger_transaction SET kind = 'deposit' WHERE id = %s", [tx_id])
    assert "cannot change" in refused("UPDATE ledger_transaction SET currency = 'USD' WHERE id = %s", [tx_id])
    assert "has entries" in refused("DELETE FROM ledger_transaction WHERE id = %s", [tx_id])
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.filter(pk=tx_id).update(kind="deposit")
    # Annotations may change, and a transaction without entries may go.
    Transaction.objects.filter(pk=tx_id).update(metadata={"note": "reviewed"})
    empty = Transaction.objects.create(kind="adjustment", currency="EUR", actor="test")
    Transaction.objects.filter(pk=empty.pk).delete()
    assert Transaction.objects.get(pk=tx_id).kind == "transfer"


@pytest.mark.django_db(transaction=True)
def test_a_real_commit_refuses_an_unbalanced_leg(wallet):
    # Committed for real (no test transaction around it); the flush after the test also proves
    # a whole-books TRUNCATE still works with entries present.
    a = wallet(funded=100)
    leg = entry(a, 1)
    with pytest.raises(IntegrityError, match="does not balance"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, "
                "created_at, checksum) VALUES (%s, %s, 2, 1, 'EUR', 101, now(), 'x')",
                [leg.transaction_id, a],
            )
    assert Entry.objects.filter(account_id=a).count() == 1


def test_a_balance_moved_without_its_entry_is_refused_at_commit(committed_books):
    a = committed_books["a"]
    message = refused("UPDATE accounts_account SET balance = balance + 1 WHERE id = %s", [a], at_commit=True)
    assert f"account {a} does not end at its chain head entry 6" in message
    # A posting that skipped its entries (the hot path's seal forgotten): sequence moved, no entry 7.
    message = refused(
        "UPDATE accounts_account SET balance = balance - 5, entry_seq = 7 WHERE id = %s", [a], at_commit=True
    )
    assert f"account {a} does not end at its chain head entry 7" in message
    assert "does not end at its chain head" in refused(
        "UPDATE accounts_account SET chain_head = %s WHERE id = %s", ["0" * 64, a], at_commit=True
    )
    # A change of what the guard does not watch (a hold, the status) passes.
    accepted("UPDATE accounts_account SET held = 1, status = 'frozen' WHERE id = %s", [a])
    head = entry(a, 6)
    accepted(
        "UPDATE accounts_account SET balance = %s, chain_head = %s WHERE id = %s",
        [head.balance_after, head.checksum, a],
    )
