"""What the verifier says about a tamper, and where (issue #9's audit; tests/ledger/tampering.py
builds the ledger and does the tampers). The ``names_*`` predicates read a problem's place fields
(``account_id``/``seq``, ``table``/``row_id``, ``position``), never its message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Model

from accounts.models import Account
from ledger.models import Entry, JournalPosition, JournalRecord, JournalSeal, Transaction
from tables.models import Hand, Seat
from tests.ledger.tampering import edited

# --- what the verifier says, and where --------------------------------------------------------


def verify():
    from ledger.integrity import ledger_verify

    return ledger_verify(full=True)


def detected(report) -> None:
    assert not report.ok, "the tamper verified clean"
    assert report.problem_count >= len(report.problems) >= 1


def each_edit_named(model: type[Model], edits: dict[str, tuple[int, str]], ids=lambda row_id: (row_id,)) -> None:
    """Each edit ``name: (row id, assignment)`` of ``model``'s table in turn on the same books, each
    undone after its verify (one ledger for a whole class of edits: a build and a flush each cost
    more than a verify). Every edit must be named at its row, and the books verify clean again once
    it is undone, so what was named is that edit and nothing left over."""
    unnamed = []
    for name, (row_id, assignment) in edits.items():
        with edited(model._meta.db_table, row_id, assignment):
            report = verify()
            if report.ok or not names_row(report, model, *ids(row_id)):
                unnamed.append((name, places(report)))
        after = verify()
        assert after.ok, f"{name} was not undone: {places(after)}"
    assert not unnamed, f"edits not named at their row: {unnamed}"


# --- where a problem is -------------------------------------------------------------------------


def problems(report) -> list[dict[str, Any]]:
    return list(getattr(report, "problems", report))


def names_entry(report, account_id: int, seq: int) -> bool:
    """The entry as (account_id, seq), or as the journaled row ledger_entry/"account:seq"."""
    return names_row(report, Entry, f"{account_id}:{seq}") or any(
        p.get("account_id") == account_id and p.get("seq") == seq for p in problems(report)
    )


def names_row(report, model: type[Model] | str, *row_ids: Any) -> bool:
    """The row ``table``/``row_id``, by any of its ids (a hand is journaled as "table pk:hand id")."""
    table = model if isinstance(model, str) else model._meta.db_table
    wanted = {str(row_id) for row_id in row_ids}
    return any(p.get("table") == table and str(p.get("row_id")) in wanted for p in problems(report))


def hand_ids(hand_pk: int) -> tuple[Any, ...]:
    hand = Hand.objects.get(pk=hand_pk)
    return hand_pk, f"{hand.table_id}:{hand.hand_id}"


def names_account(report, account_id: int) -> bool:
    """The account as an account (account_id) or as the row accounts_account/<id>."""
    return names_row(report, Account, account_id) or any(p.get("account_id") == account_id for p in problems(report))


def names_position(report, first: int, last: int | None = None) -> bool:
    last = first if last is None else last
    return any(p.get("position") is not None and first <= int(p["position"]) <= last for p in problems(report))


@dataclass(frozen=True)
class SealSeen:
    """A seal as it was before the tamper (the tamper may delete its row)."""

    id: int
    first_position: int
    last_position: int


def seals_seen() -> list[SealSeen]:
    return [
        SealSeen(*row)
        for row in JournalSeal.objects.order_by("pk").values_list("pk", "first_position", "last_position")
    ]


def names_seal(report, seal: SealSeen) -> bool:
    """The seal as its row ledger_journalseal/<id>, or as a position it covers."""
    return names_row(report, JournalSeal, seal.id) or names_position(report, seal.first_position, seal.last_position)


def position_of(record_id: int) -> int:
    return JournalPosition.objects.get(record_id=record_id).position


def record_of_key(scope: str, key: str) -> JournalRecord:
    return JournalRecord.objects.get(scope=scope, key=key)


def places(report) -> list[tuple]:
    """Every problem's place, for an assertion's message."""
    return [
        (p.get("code"), p.get("account_id"), p.get("seq"), p.get("table"), p.get("row_id"), p.get("position"))
        for p in problems(report)
    ]


def world() -> tuple:
    """Everything a retry could move."""
    return (
        list(Account.objects.order_by("pk").values_list("pk", "balance", "held", "entry_seq", "chain_head")),
        Transaction.objects.count(),
        Entry.objects.count(),
        Hand.objects.count(),
        list(Seat.objects.order_by("pk").values_list("pk", "user_id", "status")),
    )
