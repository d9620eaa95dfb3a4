"""Every money movement goes through ``transaction_post``; every hold change through ``holds_change``.

Both work on account rows the caller has locked in its ``Work`` (ledger/work.py) and queue their
writes on it: the rules (status, currency, funds, int64 bounds, the checksum chain) are decided here,
in Python, from those rows, and the database only stores the result. The checksums are computed
from the values decided here, never from anything a database function answered.

Lock order, for the whole service, so two calls never wait on each other in a cycle:
tables -> seats -> reservations -> accounts (ascending id). ``accounts_select`` takes the last:
``SELECT ... ORDER BY id FOR UPDATE``; on SQLite the IMMEDIATE transaction holds the database write
lock from BEGIN instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from accounts.cache import balance_cached, cache_writes_after_commit
from balance_project.errors import ApplicationError
from balance_project.money import INT64_MAX, amount_max_check
from ledger import chain, journal
from ledger.rows import ACCOUNT_COLUMNS, AccountRow, EntryRow, TransactionRow
from ledger.work import Result, Work

INT64_MIN = -(2**63)


@dataclass(frozen=True)
class Leg:
    """One side of a posting: ``amount`` is signed, positive raises the account's balance."""

    account_id: int
    amount: int


def accounts_select(work: Work, where: str, params: Sequence[Any] = ()) -> Result:
    """Queue the lock and read of the accounts ``where`` names, in ascending id (the lock order).
    Read them with ``accounts_of``."""
    return work.query(f"SELECT {ACCOUNT_COLUMNS} FROM accounts_account WHERE {where} ORDER BY id{work.lock()}", params)


def accounts_select_among(work: Work, sources: Sequence[str], params: Sequence[Any] = ()) -> Result:
    """``accounts_select`` of the accounts whose ids the subqueries ``sources`` yield, together.

    Never an OR of ``id IN (subquery)`` clauses: PostgreSQL evaluates such an OR as a filter (a
    hashed SubPlan) on every row of accounts_account, so each call scanned all accounts, at a cost
    that grew with the platform. The UNION is a semi-join, by primary key, on the ids alone."""
    return accounts_select(work, f"id IN ({' UNION ALL '.join(sources)})", params)


def accounts_of(result: Result) -> dict[int, AccountRow]:
    return {row[0]: AccountRow.from_db(row) for row in result.all()}


def account_require(accounts: Mapping[int, AccountRow], account_id: int) -> AccountRow:
    account = accounts.get(account_id)
    if account is None:
        raise ApplicationError("account_not_found", f"account {account_id} does not exist", {"account_id": account_id})
    return account


def system_account_ids(*, code: str, currency_sql: str, shard_sql: str) -> str:
    """The id of house account ``code`` whose currency and shard the SQL expressions name (a source
    for ``accounts_select_among``, next to the call's other accounts in one ascending-id lock)."""
    return (
        f"SELECT id FROM accounts_account WHERE kind = 'system' AND system_code = '{code}' "
        f"AND currency = {currency_sql} AND shard = {shard_sql}"
    )


def system_account_lock(work: Work, *, code: str, currency: str, shard: int) -> AccountRow:
    """Create house account ``code`` (currency, shard) if it does not exist yet, and lock it.

    Its first use in a currency and shard costs this round trip; a concurrent creation waits on the
    unique index and then finds the row. Being the newest account it has the highest id, so locking
    it after the call's other accounts keeps the ascending order."""
    now = work.time(timezone.now())
    work.execute(
        "INSERT INTO accounts_account (kind, owner_ref, system_code, shard, currency, balance, held, allow_negative, "
        "status, version, entry_seq, chain_head, created_at, updated_at) "
        "VALUES ('system', '', %s, %s, %s, 0, 0, %s, 'active', 0, 0, '', %s, %s) "
        "ON CONFLICT (system_code, currency, shard) WHERE kind = 'system' DO NOTHING",
        [code, shard, currency, code == "external", now, now],
    )
    found = accounts_select(
        work, "kind = 'system' AND system_code = %s AND currency = %s AND shard = %s", [code, currency, shard]
    )
    work.send()
    return next(iter(accounts_of(found).values()))


def ensure_usable(account: AccountRow, *, allow_frozen: bool = False) -> None:
    if account.status == "closed":
        raise ApplicationError("account_closed", f"account {account.id} is closed", {"account_id": account.id})
    if account.status == "frozen" and not allow_frozen:
        raise ApplicationError("account_frozen", f"account {account.id} is frozen", {"account_id": account.id})


def transaction_post(
    work: Work,
    *,
    transaction_id: int,
    kind: str,
    legs: Sequence[Leg],
    actor: str,
    accounts: Mapping[int, AccountRow],
    metadata: Mapping[str, Any] | None = None,
    hold_deltas: Mapping[int, int] | None = None,
    allow_frozen: bool = False,
    closing: Iterable[int] = (),
) -> TransactionRow:
    """Post one balanced transaction (id ``transaction_id``, allocated by the caller with
    ``work.next_ids``) and return it with its entries.

    ``accounts``: the locked rows of every account in ``legs`` and ``hold_deltas``; they are
    changed in place. Checks status, currency, available funds and the int64 bounds, then queues
    the transaction, its entries with their chain checksums, and the new balances, holds, versions
    and chain heads. ``hold_deltas`` changes ``held`` in the same step (a commit drops its hold while
    it moves the money). ``closing``: accounts this posting empties that the caller closes with it
    (a seat left): they are written closed in the same statement, not written twice. A refusal
    queues nothing."""
    hold_deltas, closing = dict(hold_deltas or {}), set(closing)
    _check_legs(legs)
    involved = [
        account_require(accounts, account_id)
        for account_id in sorted({*(leg.account_id for leg in legs), *hold_deltas})
    ]
    currencies = {account.currency for account in involved}
    if len(currencies) > 1:
        raise ApplicationError(
            "currency_mismatch",
            "all accounts of a transaction must share one currency",
            {"accounts": {str(a.id): a.currency for a in involved}},
        )
    for account in involved:
        ensure_usable(account, allow_frozen=allow_frozen)
    currency = next(iter(currencies))
    for amount in (*(leg.amount for leg in legs), *hold_deltas.values()):
        amount_max_check(amount, currency)
    amounts = {leg.account_id: leg.amount for leg in legs}
    for account in involved:
        _check_change(
            account,
            balance=account.balance + amounts.get(account.id, 0),
            held=account.held + hold_deltas.get(account.id, 0),
            requested=-amounts.get(account.id, 0) + hold_deltas.get(account.id, 0),
        )

    now = timezone.now()
    tx = TransactionRow(transaction_id, str(kind), currency, actor, dict(metadata or {}), now)
    work.row("ledger_transaction", tx.id, tx)
    work.execute(
        "INSERT INTO ledger_transaction (id, kind, currency, actor, metadata, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [tx.id, tx.kind, currency, actor, json.dumps(tx.metadata), work.time(now)],
    )
    values, params = [], []
    for account in involved:
        account.held += hold_deltas.get(account.id, 0)
        if account.id not in amounts:
            continue
        account.balance += amounts[account.id]
        account.entry_seq += 1
        entry = EntryRow(account.id, account.entry_seq, tx.id, amounts[account.id], currency, account.balance, now, "")
        entry.checksum = account.chain_head = chain.checksum_of(entry, account.chain_head)
        tx.posted_entries.append(entry)
        work.row("ledger_entry", f"{entry.account_id}:{entry.seq}", entry)
        values.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            entry.transaction_id,
            entry.account_id,
            entry.seq,
            entry.amount,
            currency,
            entry.balance_after,
            work.time(now),
            entry.checksum,
        ]
    for account in involved:
        if account.id in closing:
            if account.balance or account.held:
                raise RuntimeError(f"account {account.id} is closed with money on it")
            account.status = "closed"
    work.execute(
        "INSERT INTO ledger_entry (transaction_id, account_id, seq, amount, currency, balance_after, "
        f"created_at, checksum) VALUES {', '.join(values)}",
        params,
    )
    accounts_write(work, involved)
    return tx


def holds_change(
    work: Work, *, accounts: Mapping[int, AccountRow], hold_deltas: Mapping[int, int], allow_frozen: bool = False
) -> None:
    """Raise or drop holds without moving money (reserve, release, expire) on locked rows. A positive
    delta must fit in the available balance of a usable account."""
    for account_id in sorted(hold_deltas):
        account, delta = account_require(accounts, account_id), hold_deltas[account_id]
        if delta > 0:
            ensure_usable(account, allow_frozen=allow_frozen)
            amount_max_check(delta, account.currency)
        if account.held + delta < 0:
            raise RuntimeError(f"hold on account {account_id} would go below zero")
        _check_change(account, balance=account.balance, held=account.held + delta, requested=delta)
    for account_id in sorted(hold_deltas):
        accounts[account_id].held += hold_deltas[account_id]
    accounts_write(work, [accounts[account_id] for account_id in sorted(hold_deltas)])


def account_status_set(work: Work, *, account: AccountRow, status: str) -> None:
    """Change the status of a locked account."""
    account.status = status
    accounts_write(work, [account])


# One statement for all the rows a call changes: PostgreSQL prepares a table's CHECK constraints
# (parsed from the catalog, then planned) once per statement that writes it, not once per row
# (bench/README.md, session 9). The same SQL on both databases.
_ACCOUNT_CHANGE_COLUMNS = "id, balance, held, status, version, entry_seq, chain_head, updated_at"


def accounts_write(work: Work, accounts: Sequence[AccountRow]) -> None:
    """Queue the new money fields and status of locked rows (each one's version bumped), in one
    statement, and their balance cache refresh after commit."""
    if not accounts:
        return
    if len({account.id for account in accounts}) != len(accounts):
        # One UPDATE ... FROM would apply only one of two changes of a row, and say nothing.
        raise ValueError("an account appears twice in one write: change the row once")
    now = work.time(timezone.now())
    params: list[Any] = []
    for account in accounts:
        account.version += 1
        work.row("accounts_account", account.id, account)
        params += [
            account.id,
            account.balance,
            account.held,
            account.status,
            account.version,
            account.entry_seq,
            account.chain_head,
            now,
        ]
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(accounts))
    work.execute(
        f"WITH changed ({_ACCOUNT_CHANGE_COLUMNS}) AS (VALUES {rows}) "
        "UPDATE accounts_account SET balance = changed.balance, held = changed.held, status = changed.status, "
        "version = changed.version, entry_seq = changed.entry_seq, chain_head = changed.chain_head, "
        "updated_at = changed.updated_at FROM changed WHERE accounts_account.id = changed.id",
        params,
    )
    balance_cache_refresh_on_commit(work, *accounts)


def balance_cache_refresh_on_commit(work: Work, *accounts: AccountRow) -> None:
    """After commit, the balance cache gets the wallets among the rows as they are then, in the one
    Redis round trip of the work's cache writes (only wallets are cached: accounts/cache.py)."""
    changed = cache_writes_after_commit(work).accounts
    for account in accounts:
        if balance_cached(account.kind):
            changed[account.id] = account


def new_accounts(work: Work, rows: Iterable[AccountRow]) -> None:
    """Queue the insert of accounts opened by this call (ids from ``work.next_ids``), as they stand
    after the call: an opened seat account starts with its first buy-in."""
    now = work.time(timezone.now())
    for account in rows:
        opened = {"balance": 0, "held": 0, "status": "active", "version": 0, "entry_seq": 0, "chain_head": ""}
        work.row("accounts_account", account.id, journal.row_values(account, "accounts_account") | opened)
        work.execute(
            "INSERT INTO accounts_account (id, kind, owner_ref, system_code, shard, currency, balance, held, "
            "allow_negative, status, version, entry_seq, chain_head, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, 0, 0, %s, 'active', 0, 0, '', %s, %s)",
            [
                account.id,
                account.kind,
                account.owner_ref,
                account.system_code,
                account.shard,
                account.currency,
                account.allow_negative,
                now,
                now,
            ],
        )


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise ValueError("a transaction needs at least two legs")
    seen: set[int] = set()
    for leg in legs:
        if leg.amount == 0 or isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise ValueError(f"leg amounts must be non-zero integers: {leg!r}")
        if leg.account_id in seen:
            raise ValueError(f"account {leg.account_id} appears twice: net its legs first")
        seen.add(leg.account_id)
    if sum(leg.amount for leg in legs) != 0:
        raise ApplicationError(
            "unbalanced_transaction",
            "the legs of a transaction must sum to zero",
            {"sum": sum(leg.amount for leg in legs)},
        )


def _check_change(account: AccountRow, *, balance: int, held: int, requested: int) -> None:
    """``balance`` and ``held``: the account's figures after the change; ``requested``: what the
    change takes from its available balance."""
    if not account.allow_negative and balance - held < 0:
        available = balance - held + requested
        raise ApplicationError(
            "insufficient_funds",
            f"account {account.id} has {available} available, {requested} requested",
            {"account_id": account.id, "available": available, "requested": requested},
        )
    if not (INT64_MIN <= balance <= INT64_MAX and 0 <= held <= INT64_MAX):
        raise ApplicationError(
            "invalid_amount",
            f"account {account.id} cannot hold that much",
            {"account_id": account.id, "max": INT64_MAX},
        )
