"""Rows of the money tables as the lean data path (ledger/work.py) reads and writes them.

Plain slotted dataclasses instead of model instances: the hot calls build a few of these per call,
and the ORM's per-row machinery (signals, field descriptors, save()) is what made them slow. They
carry the attribute names of the models, so the result functions (accounts/results.py, ...) render
either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.work import as_bool

ACCOUNT_COLUMNS = (
    "id, kind, owner_ref, system_code, shard, currency, balance, held, allow_negative, status, "
    "version, entry_seq, chain_head"
)


@dataclass(slots=True)
class AccountRow:
    id: int
    kind: str
    owner_ref: str
    system_code: str
    shard: int
    currency: str
    balance: int
    held: int
    allow_negative: bool
    status: str
    version: int
    entry_seq: int
    chain_head: str

    @classmethod
    def from_db(cls, row: tuple[Any, ...]) -> AccountRow:
        (
            pk,
            kind,
            owner_ref,
            system_code,
            shard,
            currency,
            balance,
            held,
            allow_negative,
            status,
            version,
            entry_seq,
            chain_head,
        ) = row
        return cls(
            int(pk),
            kind,
            owner_ref,
            system_code,
            int(shard),
            currency,
            int(balance),
            int(held),
            as_bool(allow_negative),
            status,
            int(version),
            int(entry_seq),
            chain_head,
        )

    @property
    def pk(self) -> int:
        return self.id

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(slots=True)
class EntryRow:
    account_id: int
    seq: int
    transaction_id: int
    amount: int
    currency: str
    balance_after: int
    created_at: datetime
    checksum: str


@dataclass(slots=True)
class TransactionRow:
    """A transaction just posted, with its entries (what ``transaction_result`` renders)."""

    id: int
    kind: str
    currency: str
    actor: str
    metadata: dict[str, Any]
    created_at: datetime
    posted_entries: list[EntryRow] = field(default_factory=list)

    @property
    def pk(self) -> int:
        return self.id
