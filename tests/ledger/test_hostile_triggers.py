"""An insider who owns the tables (the migrating role) replaces the project's trigger functions, or
adds one, so that the database changes what the service wrote. The service signs what it decided
itself, so every such change is refused by the call or named by ``verify_ledger``, never a clean
verify.

Each case replaces functions for real (the calls commit, as in production) and puts the originals
back afterwards.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection

from accounts.models import Account
from accounts.services import account_deposit
from ledger.integrity import ledger_verify
from ledger.models import Entry
from ledger.sealing import journal_seal
from tests.perf.helpers import Run, buy_in, settle
from tests.tables.helpers import new_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Every trigger function the project installs (ledger/0003, ledger/0005).
PROJECT_TRIGGER_FUNCTIONS = {
    "ledger_entry_refuse_change",
    "ledger_entry_refuse_truncate",
    "ledger_entry_check_transaction",
    "ledger_transaction_guard",
    "ledger_account_chain_check",
    "ledger_journal_refuse_change",
}

# The insider's own account, which the hostile functions credit.
THIEF = "insider"


@contextmanager
def replaced(functions: dict[str, str]):
    """Replace each function's body with a hostile PL/pgSQL body; restore the originals after."""
    with connection.cursor() as cursor:
        originals = {}
        for name in functions:
            cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [name])
            originals[name] = cursor.fetchone()[0]
        try:
            for name, body in functions.items():
                cursor.execute(
                    f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $hostile${body}$hostile$"
                )
            yield
        finally:
            for definition in originals.values():
                cursor.execute(definition)


@contextmanager
def trigger_added(table: str, when: str, body: str):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE FUNCTION hostile_added() RETURNS trigger LANGUAGE plpgsql AS $hostile${body}$hostile$")
        cursor.execute(f"CREATE TRIGGER hostile_added {when} ON {table} FOR EACH ROW EXECUTE FUNCTION hostile_added()")
        try:
            yield
        finally:
            cursor.execute(f"DROP TRIGGER hostile_added ON {table}")
            cursor.execute("DROP FUNCTION hostile_added()")


def raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def outcome(call) -> set[tuple]:
    """Run ``call``: the refusal if the database refused it, else what verify_ledger names."""
    try:
        call()
    except DatabaseError as refused:
        return {("refused", str(refused).splitlines()[0])}
    return {(p["code"], p["account_id"], p["seq"]) for p in ledger_verify().problems}


@pytest.fixture
def game():
    """A table with two seated players and the insider's funded wallet."""
    run = Run()
    table, (a, _), (b, _), (_, thief) = run.table(), run.player("a"), run.player("b"), run.player(THIEF)
    buy_in(table, a, 500)
    buy_in(table, b, 500)
    assert ledger_verify().problem_count == 0
    return {"table": table, "a": a, "b": b, "thief": thief}


def test_every_project_trigger_function_is_covered_here():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal"
        )
        installed = {name for (name,) in cursor.fetchall()}
    assert installed == PROJECT_TRIGGER_FUNCTIONS


def test_a_balance_check_that_adds_a_leg_to_every_posting_is_named(game):
    """The audit's attack, on the trigger that runs for every entry: each posting gains a credit
    to the insider (and the matching debit from the external funds), with the chain heads moved
    along so that the chain guard is satisfied. The forged entries carry no valid checksum."""
    thief = game["thief"]
    body = f"""
    DECLARE v_account accounts_account; v_external accounts_account;
    BEGIN
        IF current_setting('hostile.done', true) = 'yes' THEN RETURN NULL; END IF;
        PERFORM set_config('hostile.done', 'yes', true);  -- once per transaction
        SELECT * INTO v_account FROM accounts_account WHERE id = {thief};
        SELECT * INTO v_external FROM accounts_account
            WHERE kind = 'system' AND system_code = 'external' AND currency = NEW.currency LIMIT 1;
        INSERT INTO ledger_entry
            (transaction_id, account_id, seq, amount, currency, balance_after, created_at, checksum)
            VALUES (NEW.transaction_id, {thief}, v_account.entry_seq + 1, 50000, NEW.currency,
                    v_account.balance + 50000, now(), md5('forged') || md5('forged')),
                   (NEW.transaction_id, v_external.id, v_external.entry_seq + 1, -50000, NEW.currency,
                    v_external.balance - 50000, now(), md5('forged2') || md5('forged2'));
        UPDATE accounts_account SET balance = balance + 50000, entry_seq = entry_seq + 1,
            chain_head = md5('forged') || md5('forged') WHERE id = {thief};
        UPDATE accounts_account SET balance = balance - 50000, entry_seq = entry_seq + 1,
            chain_head = md5('forged2') || md5('forged2') WHERE id = v_external.id;
        RETURN NULL;
    END"""
    with replaced({"ledger_entry_check_transaction": body}):
        found = outcome(lambda: settle(game["table"], "h1", {game["a"]: 100}, {game["b"]: 100}, 0))
    forged_seq = Account.objects.get(pk=thief).entry_seq
    assert forged_seq == 2 and Account.objects.get(pk=thief).balance == 1000 + 50000  # the theft landed...
    assert ("checksum_mismatch", thief, forged_seq) in found  # ...and verify names the forged entry


DOUBLE_THE_AMOUNT = (
    "BEGIN NEW.amount := NEW.amount * 2; NEW.balance_after := NEW.balance_after + NEW.amount / 2; RETURN NEW; END"
)
NO_CHECK = "BEGIN RETURN NULL; END"


def test_a_trigger_that_changes_the_amount_written_is_refused_by_the_chain_guard(game):
    """A BEFORE INSERT trigger doubles what the service wrote: the entry no longer ends where the
    service left the account, and the chain guard refuses the COMMIT."""
    before = ledger_verify().entries_checked
    with trigger_added("ledger_entry", "BEFORE INSERT", DOUBLE_THE_AMOUNT):
        found = outcome(lambda: settle(game["table"], "h1", {game["a"]: 100}, {game["b"]: 100}, 0))
    seats = {Account.objects.get(kind="seat", owner_ref=game[user]).pk for user in ("a", "b")}
    [(kind, message)] = found
    refused_account = re.match(r"account (\d+) does not end at its chain head entry 2 ", message)
    assert kind == "refused" and refused_account and int(refused_account[1]) in seats
    assert ledger_verify().entries_checked == before  # nothing landed


def test_with_every_guard_replaced_a_changed_amount_lands_and_verify_names_it(game):
    """The insider replaces the chain guard and the balance check too: the doubled amounts commit,
    and the checksums, computed from what the service decided, name both entries."""
    seats = [Account.objects.get(kind="seat", owner_ref=game[user]).pk for user in ("a", "b")]
    with (
        replaced({"ledger_account_chain_check": NO_CHECK, "ledger_entry_check_transaction": NO_CHECK}),
        trigger_added("ledger_entry", "BEFORE INSERT", DOUBLE_THE_AMOUNT),
    ):
        found = outcome(lambda: settle(game["table"], "h1", {game["a"]: 100}, {game["b"]: 100}, 0))
    assert Entry.objects.get(account_id=seats[0], seq=2).amount == -200  # the change landed...
    assert {("checksum_mismatch", seat, 2) for seat in seats} <= found  # ...and is named, entry by entry


def test_a_chain_guard_that_changes_a_balance_is_named(game):
    """The guard itself, replaced, adds to the balance of every account a posting touches."""
    body = """
    BEGIN
        IF current_setting('hostile.done', true) = 'yes' THEN RETURN NULL; END IF;
        PERFORM set_config('hostile.done', 'yes', true);  -- once per transaction
        UPDATE accounts_account SET balance = balance + 1000 WHERE id = NEW.id;
        RETURN NULL;
    END"""
    with replaced({"ledger_account_chain_check": body}):
        found = outcome(lambda: buy_in(game["table"], game["a"], 100))
    wallet, seat = (Account.objects.get(kind=kind, owner_ref=game["a"]).pk for kind in ("user", "seat"))
    [account_id] = {account for code, account, _ in found if code == "balance_mismatch"}
    assert account_id in (wallet, seat)
    # The row is also not the one the journal wrote; nothing else is blamed.
    assert {code for code, *_ in found} == {"balance_mismatch", "row_mismatch"}
    assert {account for code, account, _ in found if code == "row_mismatch"} == {account_id}
    assert (
        Account.objects.get(pk=account_id).balance - 1000
        == Entry.objects.filter(account_id=account_id).order_by("-seq").first().balance_after
    )


def test_an_append_only_guard_that_lets_an_amount_be_edited_is_named(game):
    """With the append-only function replaced, the insider edits a posted amount and its balance."""
    seat_a = Account.objects.get(kind="seat", owner_ref=game["a"]).pk
    with replaced(
        {
            "ledger_entry_refuse_change": "BEGIN RETURN NEW; END",
            "ledger_entry_check_transaction": NO_CHECK,
            "ledger_account_chain_check": NO_CHECK,
        }
    ):
        raw(
            "UPDATE ledger_entry SET amount = amount + 100, balance_after = balance_after + 100 "
            "WHERE account_id = %s AND seq = 1",
            [seat_a],
        )
        raw(
            "UPDATE accounts_account SET balance = balance + 100, "
            "chain_head = (SELECT checksum FROM ledger_entry WHERE account_id = %s AND seq = 1) WHERE id = %s",
            [seat_a, seat_a],
        )
        found = outcome(lambda: None)
    assert ("checksum_mismatch", seat_a, 1) in found


def test_a_truncate_guard_that_lets_the_entries_go_is_named(game):
    """With the truncate guard replaced, the insider empties the entries alone."""
    with replaced({"ledger_entry_refuse_truncate": "BEGIN RETURN NULL; END"}):
        raw("TRUNCATE ledger_entry")
        found = outcome(lambda: None)
    assert Entry.objects.count() == 0
    seat_a = Account.objects.get(kind="seat", owner_ref=game["a"]).pk
    assert any(
        code in ("sequence_gap", "chain_head_mismatch", "balance_mismatch") and account == seat_a
        for code, account, _ in found
    )


def test_a_journal_guard_that_lets_a_record_be_edited_is_named(game):
    """With the journal's append-only function replaced, the insider rewrites what a record says a
    buy-in wrote (to hide a change to the row); the record's MAC no longer verifies."""
    journal_seal()
    with replaced({"ledger_journal_refuse_change": "BEGIN RETURN NEW; END"}):
        raw("UPDATE ledger_journalrecord SET rows = replace(rows, '\"balance\":500', '\"balance\":900')")
        problems = ledger_verify().problems
    assert {(p["code"], p["table"]) for p in problems} >= {("journal_record_invalid", "ledger_journalrecord")}
    assert all(p["position"] for p in problems if p["code"] == "journal_record_invalid")


def test_a_transaction_guard_that_lets_a_transaction_be_rewritten_moves_no_money(game):
    """The transaction guard only protects a transaction's id, kind and currency: replaced, it lets
    the insider change a transaction's currency, which verify_ledger names, since each entry's
    currency is signed and must be its transaction's; the journal holds the whole row too."""
    tx_id = Entry.objects.filter(account__owner_ref=game["a"], account__kind="seat").first().transaction_id
    with replaced({"ledger_transaction_guard": "BEGIN RETURN NEW; END"}):
        raw("UPDATE ledger_transaction SET currency = 'USD' WHERE id = %s", [tx_id])
        found = outcome(lambda: None)
    assert {"transaction_currency_mismatch", "row_mismatch"} <= {code for code, *_ in found}


def test_the_calls_still_work_and_verify_once_the_functions_are_back(game):
    account_deposit(client="t", idempotency_key=new_key(), account_id=game["thief"], amount=5)
    settle(game["table"], "h9", {game["a"]: 10}, {game["b"]: 10}, 0)
    assert ledger_verify().problem_count == 0
