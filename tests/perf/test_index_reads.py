"""Every call reaches the accounts it locks by index, never by reading every account.

A hot call's accounts are the union of a few sources (a wallet, the seats of some players, a house
account shard). Written as an OR of ``id IN (subquery)`` clauses, PostgreSQL filters every row of
accounts_account against a hashed SubPlan (by a scan, or by a full index scan in id order): each
buy-in, settlement, cash-out and table close then read all accounts, a cost that grew with the
platform (3.9 ms of the database's time per buy-in at 8,000 accounts).
"""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.services import account_deposit, account_transfer, account_withdraw
from tables.services import table_close
from tests.perf.helpers import CLIENT, Run, buy_in, cash_out, commit, release, reserve, settle
from tests.tables.helpers import new_key

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("a_rake_shard_per_table")]

# Enough accounts that PostgreSQL, knowing how many there are, would only scan them all when the
# statement leaves it no other way.
FILLER_ACCOUNTS = 5_000
# What the calls read, through the primary key and the unique indexes: 2 to 10 rows (a wallet,
# its seat, the house shard, the reads of the deferred checks). Reading them all was 5,000 more.
ROWS_A_CALL_MAY_READ = 20


def accounts_read() -> int:
    """Rows of accounts_account read so far in this transaction (the test's own), by a scan of the
    table or through an index (a full index scan, in id order, reads them all too)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'accounts_account'"
        )
        return cursor.fetchone()[0]


def filler_accounts(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_account (kind, owner_ref, system_code, shard, currency, balance, held, "
            "allow_negative, status, version, entry_seq, chain_head, created_at, updated_at) "
            "SELECT 'user', 'filler-' || n, '', 0, 'EUR', 0, 0, false, 'active', 0, 0, '', now(), now() "
            "FROM generate_series(1, %s) AS n",
            [count],
        )
        cursor.execute("ANALYZE accounts_account")  # counts this transaction's own rows as live


# In the test's transaction (the calls run in savepoints), so pg_stat_xact_user_tables counts
# exactly the scans of this test's statements, at once.
@pytest.mark.django_db
def test_no_call_reads_every_account(settings):
    settings.PLAYER_TRANSFERS_ENABLED = True
    run = Run()
    table, (a, wallet_a), (b, wallet_b) = run.table(), run.player("a", funded=5000), run.player("b", funded=5000)
    filler_accounts(FILLER_ACCOUNTS)
    calls = {
        "reserve": lambda: reserve(table, a, 600),
        "commit opening a seat": lambda: commit(reserve(table, a, 200)["reservation"]["id"]),
        "release": lambda: release(reserve(table, a, 100)["reservation"]["id"]),
        "buy-in opening a seat": lambda: buy_in(table, b, 500),
        "buy-in": lambda: buy_in(table, b, 100),
        "settle with rake": lambda: settle(table, "h1", {a: 100, b: 100}, {a: 195}, 5),
        "cash-out": lambda: cash_out(table, a, amount=50),
        "cash-out and leave": lambda: cash_out(table, b, leave=True),
        "deposit": lambda: account_deposit(client=CLIENT, idempotency_key=new_key(), account_id=wallet_a, amount=5),
        "withdrawal": lambda: account_withdraw(client=CLIENT, idempotency_key=new_key(), account_id=wallet_a, amount=5),
        "transfer": lambda: account_transfer(
            client=CLIENT, idempotency_key=new_key(), from_account_id=wallet_a, to_account_id=wallet_b, amount=5
        ),
    }
    read = {}
    for name, call in calls.items():
        before = accounts_read()
        call()
        read[name] = accounts_read() - before
    cash_out(table, a, leave=True)
    before = accounts_read()
    table_close(client=CLIENT, idempotency_key=new_key(), table_id=table)
    read["table close"] = accounts_read() - before
    assert {name: count for name, count in read.items() if count > ROWS_A_CALL_MAY_READ} == {}
