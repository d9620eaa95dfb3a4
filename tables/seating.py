"""Checks, lookups and row locks shared by the table and reservation services. No money moves here.

Lock order for the whole service: tables -> seats -> reservations -> accounts (ascending id).
The lock helpers here queue the first two on a ``Work`` (ledger/work.py); callers queue them before
any reservation or account. Table, seat and reservation rows are locked ``FOR NO KEY UPDATE`` (see
``table_select``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from accounts.identifiers import MAX_TABLE_ID, identifier_check
from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger.rows import AccountRow
from ledger.services import account_status_set, accounts_select_among, new_accounts
from ledger.work import Result, Work
from tables.models import Seat, Table
from tables.rows import SEAT_COLUMNS, TABLE_COLUMNS, SeatRow, TableRow


def table_id_check(value: Any, *, field: str = "table_id") -> str:
    return identifier_check(value, field=field, max_length=MAX_TABLE_ID)


def table_find(table_id: str) -> Table:
    """The table, unlocked; ``table_not_found`` if unknown (an id that cannot be one is refused first,
    so a refusal never repeats unbounded input)."""
    table_id = table_id_check(table_id)
    table = Table.objects.filter(table_id=table_id).first()
    if table is None:
        raise ApplicationError("table_not_found", f"table {table_id} does not exist", {"table_id": table_id})
    return table


# The table's primary key by its public id, for statements queued before the table was read.
TABLE_PK = "(SELECT id FROM tables_table WHERE table_id = %s)"
TABLE_CURRENCY = "(SELECT currency FROM tables_table WHERE table_id = %s)"


def table_select(work: Work, table_id: str) -> Result:
    """Queue the lock of the table row: every chip movement and every reservation at a table holds
    it, so its seats, its hands and its ``chips`` change one call at a time. Read it with
    ``table_of``.

    ``FOR NO KEY UPDATE`` rather than ``FOR UPDATE`` (on PostgreSQL): the row's key never changes,
    and a plain ``FOR UPDATE`` would also block the ``KEY SHARE`` lock that inserting a row with a
    foreign key to the table takes, which lets an unrelated insert wait in the middle of the order."""
    return work.query(
        f"SELECT {TABLE_COLUMNS} FROM tables_table WHERE table_id = %s{work.lock('FOR NO KEY UPDATE')}", [table_id]
    )


def table_of(result: Result, table_id: str) -> TableRow:
    row = result.one()
    if row is None:
        raise ApplicationError("table_not_found", f"table {table_id} does not exist", {"table_id": table_id})
    return TableRow.from_db(row)


def table_require_open(table: TableRow | Table) -> None:
    if table.status != Table.Status.OPEN:
        raise ApplicationError("table_closed", f"table {table.table_id} is closed", {"table_id": table.table_id})


def seats_select(work: Work, table_id: str, user_ids: Iterable[str]) -> Result:
    """Queue the lock of the active seats of ``user_ids`` at the table (ascending id), after the
    table's. Read them with ``seats_of``."""
    wanted = sorted(set(user_ids))
    return work.query(
        f"SELECT {SEAT_COLUMNS} FROM tables_seat WHERE table_id = {TABLE_PK} "
        f"AND user_id IN ({', '.join(['%s'] * len(wanted))}) AND status = 'active' "
        f"ORDER BY id{work.lock('FOR NO KEY UPDATE')}",
        [table_id, *wanted],
    )


def player_at_table_select(work: Work, table_id: str, user_id: str) -> tuple[Result, Result, Result]:
    """Queue, in the lock order, the table, the player's active seat at it, then (one ascending-id
    statement) their wallet in the table's currency and the seat's account. Read them with
    ``table_of``, ``seats_of`` and ``accounts_of``."""
    return (
        table_select(work, table_id),
        seats_select(work, table_id, [user_id]),
        accounts_select_among(
            work, [wallet_at_table_ids(), seat_account_ids(1)], [user_id, table_id, table_id, user_id]
        ),
    )


def seat_account_ids(user_count: int) -> str:
    """The accounts of the active seats of ``user_count`` players at a table (a source for
    ``accounts_select_among``; params: the table id, then the user ids)."""
    return (
        f"SELECT account_id FROM tables_seat WHERE table_id = {TABLE_PK} "
        f"AND user_id IN ({', '.join(['%s'] * user_count)}) AND status = 'active'"
    )


def seats_of(result: Result, table: TableRow) -> dict[str, SeatRow]:
    return {row[1]: SeatRow.from_db(row, table) for row in result.all()}


def seats_require(seats: dict[str, SeatRow], table: TableRow, user_ids: Iterable[str]) -> None:
    """``player_not_seated`` names the players without an active seat."""
    missing = [user_id for user_id in sorted(set(user_ids)) if user_id not in seats]
    if missing:
        raise ApplicationError(
            "player_not_seated",
            f"not seated at table {table.table_id}: {', '.join(missing)}",
            {"table_id": table.table_id, "user_ids": missing},
        )


def seat_open(work: Work, table: TableRow, user_id: str) -> SeatRow:
    """A new seat with a new seat account for a player's first buy-in at ``table`` (locked by the
    caller, so two buy-ins cannot both open one; the partial unique constraint on active seats would
    refuse the second anyway). Allocates their ids in a round trip of its own and queues the rows."""
    account_ids, seat_ids = work.next_ids("accounts_account"), work.next_ids("tables_seat")
    work.send()
    account = AccountRow(
        work.ids(account_ids)[0],
        Account.Kind.SEAT,
        user_id,
        "",
        0,
        table.currency,
        0,
        0,
        False,
        Account.Status.ACTIVE,
        0,
        0,
        "",
    )
    new_accounts(work, [account])
    seat = SeatRow(work.ids(seat_ids)[0], user_id, account.id, Seat.Status.ACTIVE, table, account)
    work.row(
        "tables_seat", seat.id, {"table_id": table.id, "user_id": user_id, "account_id": account.id, "status": "active"}
    )
    work.execute(
        "INSERT INTO tables_seat (id, table_id, user_id, account_id, status, opened_at, left_at) "
        "VALUES (%s, %s, %s, %s, 'active', %s, NULL)",
        [seat.id, table.id, user_id, account.id, work.time(timezone.now())],
    )
    return seat


def seat_leave(work: Work, seat: SeatRow, account: AccountRow) -> None:
    """Mark a seat left; its account (locked by the caller, at zero) is closed with it, unless the
    posting that emptied it has already (``transaction_post(closing=...)``)."""
    if account.status != Account.Status.CLOSED:
        account_status_set(work, account=account, status=Account.Status.CLOSED)
    seat.status = Seat.Status.LEFT
    work.row(
        "tables_seat",
        seat.id,
        {"table_id": seat.table.id, "user_id": seat.user_id, "account_id": seat.account_id, "status": "left"},
    )
    work.execute(
        "UPDATE tables_seat SET status = 'left', left_at = %s WHERE id = %s", [work.time(timezone.now()), seat.id]
    )


def wallet_at_table_ids() -> str:
    """The player's wallet in the table's currency (a source for ``accounts_select_among``; params:
    user id, table id)."""
    return f"SELECT id FROM accounts_account WHERE kind = 'user' AND owner_ref = %s AND currency = {TABLE_CURRENCY}"


def wallet_of(accounts: dict[int, AccountRow], user_id: str, currency: str) -> AccountRow:
    """The user's wallet in ``currency`` among locked rows: ``currency_mismatch`` if they only hold
    other currencies, ``account_not_found`` if they hold none."""
    wallet = next(
        (
            a
            for a in accounts.values()
            if a.kind == Account.Kind.USER and a.owner_ref == user_id and a.currency == currency
        ),
        None,
    )
    if wallet is not None:
        return wallet
    others = sorted(
        Account.objects.filter(kind=Account.Kind.USER, owner_ref=user_id).values_list("currency", flat=True)
    )
    if others:
        raise ApplicationError(
            "currency_mismatch",
            f"the table plays in {currency}; {user_id} has wallets in {', '.join(others)}",
            {"user_id": user_id, "table_currency": currency, "wallet_currencies": others},
        )
    raise ApplicationError(
        "account_not_found", f"{user_id} has no {currency} wallet", {"user_id": user_id, "currency": currency}
    )
