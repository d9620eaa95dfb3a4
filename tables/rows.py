"""Table and seat rows as the lean data path reads and writes them (see ledger/rows.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.rows import AccountRow
from ledger.work import Work

TABLE_COLUMNS = "id, table_id, currency, status, chips"
SEAT_COLUMNS = "id, user_id, account_id, status"


@dataclass(slots=True)
class TableRow:
    id: int
    table_id: str
    currency: str
    status: str
    chips: int

    @classmethod
    def from_db(cls, row: tuple[Any, ...]) -> TableRow:
        pk, table_id, currency, status, chips = row
        return cls(int(pk), table_id, currency, status, int(chips))

    @property
    def pk(self) -> int:
        return self.id


@dataclass(slots=True)
class SeatRow:
    """``table`` and ``account`` are the rows ``seat_result`` renders it with."""

    id: int
    user_id: str
    account_id: int
    status: str
    table: TableRow
    account: AccountRow | None = None

    @classmethod
    def from_db(cls, row: tuple[Any, ...], table: TableRow) -> SeatRow:
        pk, user_id, account_id, status = row
        return cls(int(pk), user_id, int(account_id), status, table)

    @property
    def pk(self) -> int:
        return self.id


def table_write(work: Work, table: TableRow, now: datetime) -> None:
    work.row("tables_table", table.id, table)
    work.execute(
        "UPDATE tables_table SET chips = %s, updated_at = %s WHERE id = %s", [table.chips, work.time(now), table.id]
    )
