"""The tamper audit's tools (issue #9): a realistic ledger built through the real services, sealed
twice, and tampering by a PostgreSQL superuser who knows the algorithm but not LEDGER_HMAC_KEY.

A tamper runs on its own psycopg connection with ``session_replication_role = replica`` (every
trigger, foreign key included, off) and is committed, as an insider at a psql prompt would do it;
the test's Django connection then sees the tampered books. What the verifier says about it, and
where: tests/ledger/tamper_checks.py.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from accounts.models import Account
from accounts.services import account_adjust, account_deposit, account_open, account_transfer, account_withdraw
from ledger.models import Entry, JournalSeal
from reservations.services import reservation_commit, reservation_release, reservation_reserve
from tables.models import Hand
from tables.services import hand_settle, seat_cash_out, table_buy_in, table_open

CLIENT = "poker"
CASHIER = "cashier"
# The apps whose tables a test writes: the flush after each test empties only those (and runs no
# post_migrate), which keeps a test that commits for real at a fraction of a full flush.
MONEY_APPS = ["accounts", "ledger", "reservations", "tables"]


# --- the ledger ---------------------------------------------------------------------------------


@dataclass
class Ledger:
    """The ids a tamper aims at. Every user and table id carries the build's token."""

    token: str
    users: dict[str, str] = field(default_factory=dict)  # name -> user id
    wallets: dict[str, int] = field(default_factory=dict)  # name -> wallet account id
    tables: dict[str, str] = field(default_factory=dict)  # name -> table id
    reservations: dict[str, int] = field(default_factory=dict)  # "committed" / "released" / "pending"
    hands: dict[str, int] = field(default_factory=dict)  # hand id -> tables_hand pk
    transactions: dict[str, int] = field(default_factory=dict)  # what it was -> ledger_transaction pk
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # what it was -> (scope, idempotency key)
    seals: list[int] = field(default_factory=list)  # JournalSeal ids, oldest first
    # The call (service and its arguments) of an operation sealed in seal 2, to retry it.
    retry: dict[str, Any] = field(default_factory=dict)

    def user(self, name: str) -> str:
        return self.users[name]


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def seal() -> int:
    """Run the sealer; -> the id of the seal it wrote."""
    from ledger.sealing import journal_seal

    journal_seal()
    newest = JournalSeal.objects.order_by("-pk").first()
    assert newest is not None, "journal_seal() wrote no seal"
    return newest.pk


def build_ledger(*, after_first_seal=None) -> Ledger:
    """About 40 operations through the services, in two sealed rounds (LEDGER_SEAL_SINK must point
    at the test's own file). ``after_first_seal()`` runs right after seal 1 (a dump, say).

    Round 1: five wallets (EUR, one USD), deposits, withdrawals, transfers, two tables with buy-ins,
    a reservation committed in part and one released, three hands with rake, a partial cash-out and
    a leave, a manual adjustment. Round 2: a deposit, a withdrawal, a hand, a reservation left
    pending (its hold stays on bob's wallet) and, last, a transfer carol -> dave that nothing after
    it touches: it sits at the tail of both chains.
    """
    book = Ledger(token=f"tm{uuid.uuid4().hex[:8]}")
    for name, currency, funded in (
        ("alice", "EUR", 5000),
        ("bob", "EUR", 3000),
        ("carol", "EUR", 2000),
        ("dave", "EUR", 1500),
        ("erin", "USD", 800),
    ):
        user = book.users[name] = f"{book.token}-{name}"
        opened = account_open(client=CLIENT, idempotency_key=_key("open"), owner_ref=user, currency=currency)
        book.wallets[name] = opened["account"]["id"]
        account_deposit(client=CASHIER, idempotency_key=_key("dep"), account_id=book.wallets[name], amount=funded)
    w = book.wallets
    account_withdraw(client=CASHIER, idempotency_key=_key("wd"), account_id=w["alice"], amount=200)
    account_withdraw(client=CASHIER, idempotency_key=_key("wd"), account_id=w["bob"], amount=100)
    for source, target, amount in (("alice", "bob", 300), ("bob", "carol", 150), ("carol", "alice", 50)):
        account_transfer(
            client=CLIENT, idempotency_key=_key("tr"), from_account_id=w[source], to_account_id=w[target], amount=amount
        )

    for name, currency in (("t1", "EUR"), ("t2", "USD")):
        book.tables[name] = f"{book.token}-{name}"
        table_open(client=CLIENT, idempotency_key=_key("tbl"), table_id=book.tables[name], currency=currency)
    t1, t2 = book.tables["t1"], book.tables["t2"]
    for name, table, amount in (("alice", t1, 1000), ("bob", t1, 800), ("carol", t1, 500), ("erin", t2, 300)):
        buy_in = table_buy_in(
            client=CLIENT, idempotency_key=_key("buy"), user_id=book.user(name), table_id=table, amount=amount
        )
        book.transactions[f"buy_in_{name}"] = buy_in["transaction"]["id"]
    reserved = _reserve(book, "dave", t1, 400)
    reservation_commit(client=CLIENT, idempotency_key=_key("commit"), reservation_id=reserved, amount=300)
    book.reservations["committed"] = reserved
    released = _reserve(book, "carol", t1, 200)
    reservation_release(client=CLIENT, idempotency_key=_key("release"), reservation_id=released, reason="changed mind")
    book.reservations["released"] = released

    _hand(book, t1, "h1", {"alice": 100, "bob": 100}, {"alice": 190}, 10)
    _hand(book, t1, "h2", {"bob": 50, "carol": 50}, {"carol": 95}, 5)
    _hand(book, t1, "h3", {"alice": 40, "dave": 40}, {"dave": 76}, 4)
    seat_cash_out(client=CLIENT, idempotency_key=_key("co"), table_id=t1, user_id=book.user("bob"), amount=200)
    seat_cash_out(client=CLIENT, idempotency_key=_key("co"), table_id=t1, user_id=book.user("carol"), leave=True)
    adjusted = account_adjust(
        actor="support-ann", idempotency_key=_key("adj"), account_id=w["dave"], amount=25, reason="goodwill: #4711"
    )
    book.transactions["adjustment"] = adjusted["transaction"]["id"]
    book.seals.append(seal())
    if after_first_seal is not None:
        after_first_seal()

    book.retry = {
        "call": account_deposit,
        "kwargs": {"client": CASHIER, "idempotency_key": _key("dep"), "account_id": w["alice"], "amount": 700},
    }
    book.retry["answer"] = book.retry["call"](**book.retry["kwargs"])
    book.transactions["deposit_alice"] = book.retry["answer"]["transaction"]["id"]
    account_withdraw(client=CASHIER, idempotency_key=_key("wd"), account_id=w["erin"], amount=100)
    _hand(book, t1, "h4", {"alice": 60, "dave": 60}, {"alice": 114}, 6)
    book.reservations["pending"] = _reserve(book, "bob", t1, 250)
    book.keys["tail_transfer"] = (CLIENT, _key("tr"))
    tail = account_transfer(
        client=CLIENT,
        idempotency_key=book.keys["tail_transfer"][1],
        from_account_id=w["carol"],
        to_account_id=w["dave"],
        amount=120,
    )
    book.transactions["tail_transfer"] = tail["transaction"]["id"]
    book.seals.append(seal())
    return book


def _reserve(book: Ledger, name: str, table: str, amount: int) -> int:
    reserved = reservation_reserve(
        client=CLIENT, idempotency_key=_key("res"), user_id=book.user(name), table_id=table, amount=amount
    )
    return reserved["reservation"]["id"]


def _hand(book: Ledger, table: str, hand_id: str, contributions: dict, payouts: dict, rake: int) -> None:
    settled = hand_settle(
        client=CLIENT,
        idempotency_key=_key("hand"),
        table_id=table,
        hand_id=hand_id,
        contributions={book.user(name): amount for name, amount in contributions.items()},
        payouts={book.user(name): amount for name, amount in payouts.items()},
        rake=rake,
    )
    book.transactions[f"hand_{hand_id}"] = settled["transaction"]["id"]
    book.hands[hand_id] = Hand.objects.get(table__table_id=table, hand_id=hand_id).pk


def seal_sink_file(settings, tmp_path: Path) -> Path:
    """Point LEDGER_SEAL_SINK at a file of the test's own."""
    path = tmp_path / "ledger-seals.jsonl"
    settings.LEDGER_SEAL_SINK = f"file://{path}"
    return path


def fresh_deposit(account_id: int, amount: int = 10) -> None:
    account_deposit(client=CASHIER, idempotency_key=_key("dep"), account_id=account_id, amount=amount)


# --- the insider --------------------------------------------------------------------------------


def _connect_params() -> dict[str, Any]:
    s = connection.settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "password": s["PASSWORD"], "host": s["HOST"], "port": s["PORT"]}
    return {name: value for name, value in params.items() if value}


@contextmanager
def superuser() -> Iterator[psycopg.Cursor]:
    """A cursor of the insider: its own connection, every trigger off, committed at the end."""
    with psycopg.connect(**_connect_params()) as insider:  # commits when the block ends cleanly
        with insider.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            yield cursor


def sql(statement: str, params: Any = ()) -> None:
    with superuser() as cursor:
        cursor.execute(statement, params)


@contextmanager
def edited(table: str, row_id: int, assignment: str) -> Iterator[None]:
    """``UPDATE table SET assignment`` on one row, as the insider; every column put back after."""
    with superuser() as cursor:
        cursor.execute(f"SELECT to_jsonb(t) FROM {table} t WHERE id = %s", [row_id])
        found = cursor.fetchone()
        assert found is not None, f"{table} {row_id} does not exist"
        saved = found[0]
        cursor.execute(f"UPDATE {table} SET {assignment} WHERE id = %s", [row_id])
    try:
        yield
    finally:
        columns = ", ".join(f'"{column}" = r."{column}"' for column in saved if column != "id")
        sql(
            f"UPDATE {table} t SET {columns} FROM jsonb_populate_record(NULL::{table}, %s) r WHERE t.id = %s",
            [Jsonb(saved), row_id],
        )


@contextmanager
def tables_kept(*tables: str) -> Iterator[None]:
    """Whatever the insider does to ``tables`` inside the block, their rows are put back after (for
    small tables: the journal's, not the books')."""
    saved = {}
    with superuser() as cursor:
        for table in tables:
            cursor.execute(f"SELECT COALESCE(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM {table} t")
            found = cursor.fetchone()
            assert found is not None
            saved[table] = found[0]
    try:
        yield
    finally:
        with superuser() as cursor:
            for table, rows in saved.items():
                cursor.execute(f"DELETE FROM {table}")
                cursor.execute(
                    f"INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, %s)", [Jsonb(rows)]
                )


def tail_rolled_back(cursor: psycopg.Cursor, account_id: int, seq: int) -> None:
    """Delete the account's entry at ``seq`` (its last) and put the account back as it was before
    it: head, balance, entry_seq and the version the posting bumped. The chain then looks whole."""
    cursor.execute("DELETE FROM ledger_entry WHERE account_id = %s AND seq = %s", [account_id, seq])
    cursor.execute(
        "UPDATE accounts_account SET entry_seq = %(seq)s - 1, version = version - 1, "
        "chain_head = COALESCE((SELECT checksum FROM ledger_entry e WHERE e.account_id = %(id)s "
        "AND e.seq = %(seq)s - 1), ''), "
        "balance = COALESCE((SELECT balance_after FROM ledger_entry e WHERE e.account_id = %(id)s "
        "AND e.seq = %(seq)s - 1), 0) WHERE id = %(id)s",
        {"id": account_id, "seq": seq},
    )


def transaction_deleted(transaction_id: int) -> list[tuple[int, int]]:
    """Delete a transaction whose legs are the tails of their chains, with its entries, and roll
    each account back consistently. -> the (account, seq) of every deleted leg."""
    legs = list(Entry.objects.filter(transaction_id=transaction_id).values_list("account_id", "seq"))
    for account_id, seq in legs:
        assert Account.objects.get(pk=account_id).entry_seq == seq, "not at the tail of its chain"
    with superuser() as cursor:
        for account_id, seq in legs:
            tail_rolled_back(cursor, account_id, seq)
        cursor.execute("DELETE FROM ledger_transaction WHERE id = %s", [transaction_id])
    return legs


def dump(path: Path) -> None:
    subprocess.run(["pg_dump", *_libpq_args(), "--format=custom", f"--file={path}"], check=True, env=_libpq_env())


def restore(path: Path) -> None:
    """Put the dump back over the database (every table dropped and recreated with its rows)."""
    connection.close()
    subprocess.run(
        ["pg_restore", *_libpq_args(), "--clean", "--if-exists", "--single-transaction", str(path)],
        check=True,
        env=_libpq_env(),
    )


def _libpq_args() -> list[str]:
    s = connection.settings_dict
    args = [f"--dbname={s['NAME']}"]
    if s["HOST"]:
        args.append(f"--host={s['HOST']}")
    if s["PORT"]:
        args.append(f"--port={s['PORT']}")
    if s["USER"]:
        args.append(f"--username={s['USER']}")
    return args


def _libpq_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    if connection.settings_dict["PASSWORD"]:
        env["PGPASSWORD"] = connection.settings_dict["PASSWORD"]
    return env
