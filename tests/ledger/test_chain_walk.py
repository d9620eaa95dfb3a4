"""Account-level checks of the chain walk, on rows the database constraints would refuse."""

from collections import namedtuple
from datetime import UTC, datetime

from ledger import chain
from ledger.integrity import ChainWalk

AccountRow = namedtuple("AccountRow", "id currency balance held allow_negative entry_seq chain_head")
EntryRow = namedtuple("EntryRow", "account_id seq transaction_id amount currency balance_after created_at checksum")
MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def chain_of(account_id: int, amounts: list[int]) -> list[EntryRow]:
    rows, prev, balance = [], chain.GENESIS, 0
    for seq, amount in enumerate(amounts, start=1):
        balance += amount
        fields = dict(
            account_id=account_id,
            seq=seq,
            transaction_id=100 + seq,
            amount=amount,
            currency="EUR",
            balance_after=balance,
            created_at=MOMENT,
        )
        prev = chain.entry_checksum(prev_checksum=prev, **fields)
        rows.append(EntryRow(checksum=prev, **fields))
    return rows


def walk(account: AccountRow, rows: list[EntryRow]) -> set[tuple]:
    walker = ChainWalk(account)
    for row in rows:
        walker.step(row)
    return {(p.code, p.seq) for p in walker.finish()}


def test_a_sound_chain_has_no_problem():
    rows = chain_of(7, [100, -30, 5])
    account = AccountRow(7, "EUR", 75, 10, False, 3, rows[-1].checksum)
    assert walk(account, rows) == set()


def test_negative_hold_and_negative_available_are_reported():
    rows = chain_of(7, [100])
    assert walk(AccountRow(7, "EUR", 100, -1, False, 1, rows[-1].checksum), rows) == {("held_negative", None)}
    assert walk(AccountRow(7, "EUR", 100, 101, False, 1, rows[-1].checksum), rows) == {("available_negative", None)}
    # The external-funds account may go negative.
    assert walk(AccountRow(7, "EUR", 100, 101, True, 1, rows[-1].checksum), rows) == set()


def test_an_account_without_entries_must_have_an_empty_head():
    assert walk(AccountRow(7, "EUR", 0, 0, False, 0, ""), []) == set()
    assert walk(AccountRow(7, "EUR", 0, 0, False, 0, "ab"), []) == {("chain_head_mismatch", None)}
    assert walk(AccountRow(7, "EUR", 0, 0, False, 2, ""), []) == {("sequence_gap", 1)}


def test_an_entry_in_another_currency_is_reported():
    rows = chain_of(7, [100])
    account = AccountRow(7, "USD", 100, 0, False, 1, rows[0].checksum)
    assert walk(account, rows) == {("currency_mismatch", 1)}
