"""Ledger integrity: walk every account's checksum chain and say exactly what is wrong, and where.

``ledger_verify`` reads one consistent snapshot (REPEATABLE READ on PostgreSQL, a deferred read
transaction on SQLite) and streams entries in (account, seq) order, so memory stays flat however
long the ledger grows. Writers are never blocked by it.

Each problem names the account, the sequence number and the transaction where that makes sense:
``{"code", "account_id", "seq", "transaction_id", "message"}``. ``PROBLEM_CODES`` lists the codes.
The journal, its seals and the rows it wrote are checked by ledger/journal_verify.py; the background
jobs and the reconciliation live in ledger/integrity_runs.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from accounts.models import Account
from ledger import chain
from ledger.models import Entry

PROBLEM_CODES = {
    "checksum_mismatch": "an entry's fields do not hash to its checksum (edited, inserted or relinked)",
    "sequence_gap": "entries are missing from the chain (deleted), inside it or at its end",
    "chain_head_mismatch": "the account's head (entry_seq, chain_head) is not the chain's last entry",
    "entry_reordered": "two entries are authentic but sit at each other's sequence numbers",
    "balance_after_mismatch": "balance_after is not the previous balance_after plus the amount",
    "balance_mismatch": "the account balance is not the sum of its entries",
    "currency_mismatch": "an entry's currency is not its account's",
    "transaction_currency_mismatch": "an entry's currency is not its transaction's",
    "transaction_unbalanced": "a transaction's entries do not sum to zero",
    "held_negative": "an account holds a negative amount",
    "available_negative": "balance - held is negative on an account that may not go negative",
    "account_missing": "entries exist for an account whose row is gone",
    # The journal, its seals and the rows it wrote (ledger/journal_verify.py).
    "row_mismatch": "a row differs from the newest image the journal holds of it (table, row)",
    "row_missing": "a row the journal wrote is gone (table, row)",
    "row_not_journaled": "a row no journal record wrote (inserted, or its key changed)",
    "journal_record_invalid": "a journal record does not verify against its MAC (edited or forged)",
    "journal_record_missing": "a sealed position's journal record is gone",
    "journal_record_unsealed": "a journal record older than the seal window is not sealed",
    "journal_position_missing": "sealed positions are gone",
    "journal_position_invalid": "a position names a seal that does not cover it",
    "seal_invalid": "a seal does not verify against its MAC",
    "seal_chain_broken": "a seal does not follow the one before it",
    "seal_head_mismatch": "the links of a seal's records do not make its head",
    "seal_totals_mismatch": "a seal's totals differ from its records",
    "seal_missing": "a seal of the external sink is not in the database (rolled back, truncated, deleted)",
    "seal_mismatch": "a seal in the database differs from the one in the external sink",
    "seal_not_anchored": "a seal older than the seal window is not in the external sink",
    "external_seal_invalid": "a line of the external sink is not a valid seal",
}

CHUNK_SIZE = 5000
# The report lists at most this many problems; ``problem_count`` is always the true total.
MAX_PROBLEMS_LISTED = 10_000
# Up to this many checksum mismatches in one account are examined for swapped entries.
MAX_MISMATCHES_DIAGNOSED = 64

_ACCOUNT_FIELDS = ("id", "currency", "balance", "held", "allow_negative", "entry_seq", "chain_head")
_ENTRY_FIELDS = ("account_id", "seq", "transaction_id", "amount", "currency", "balance_after", "created_at", "checksum")


@dataclass(frozen=True)
class Problem:
    """What is wrong and where: an account and seq, a transaction, a table and row, a journal position."""

    code: str
    message: str
    account_id: int | None = None
    seq: int | None = None
    transaction_id: int | None = None
    table: str | None = None
    row_id: str | None = None
    position: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "account_id": self.account_id,
            "seq": self.seq,
            "transaction_id": self.transaction_id,
            "table": self.table,
            "row_id": self.row_id,
            "position": self.position,
            "message": self.message,
        }


@dataclass
class VerificationReport:
    started_at: datetime
    finished_at: datetime | None = None
    accounts_checked: int = 0
    entries_checked: int = 0
    transactions_checked: int = 0
    records_checked: int = 0
    full: bool = True
    # The newest seal this run verified through (the next incremental run starts there).
    through_seal: int | None = None
    problem_count: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started_at": chain.format_timestamp(self.started_at),
            "finished_at": chain.format_timestamp(self.finished_at) if self.finished_at else None,
            "accounts_checked": self.accounts_checked,
            "entries_checked": self.entries_checked,
            "transactions_checked": self.transactions_checked,
            "records_checked": self.records_checked,
            "full": self.full,
            "through_seal": self.through_seal,
            "problem_count": self.problem_count,
            "problems": list(self.problems),
        }


def ledger_verify(
    *, account_ids: Iterable[int] | None = None, full: bool = True, since_seal: int | None = None
) -> VerificationReport:
    """Verify the ledger in one snapshot. Read-only; takes no locks.

    ``full``: every chain, balance and transaction, and the journal, its seals and every journaled
    row (ledger/journal_verify.py). Not ``full``: only what came after seal ``since_seal`` (the
    journal's records, the rows they wrote and their entries' links), at a cost proportional to
    it; with no ``since_seal`` it is a full run. ``account_ids``: only those accounts' chains and
    transactions (the journal is not checked)."""
    from ledger.journal_verify import journal_check

    ids = None if account_ids is None else sorted({int(account_id) for account_id in account_ids})
    incremental = not full and since_seal is not None and ids is None
    with read_snapshot():
        report = VerificationReport(started_at=timezone.now(), full=not incremental)
        if not incremental:
            _verify(report, ids)
        if ids is None:
            report.through_seal = journal_check(report, _adder(report), since=since_seal if incremental else None)
        report.finished_at = timezone.now()
        return report


def _adder(report: VerificationReport) -> Any:
    def add(code: str, message: str, **where: Any) -> None:
        report.add(Problem(code, message, **where))

    return add


@contextmanager
def read_snapshot() -> Iterator[None]:
    """Run the enclosed reads in one consistent snapshot without blocking writers.

    Inside an existing transaction the caller's transaction is used as it is.
    """
    if connection.in_atomic_block:
        yield
        return
    with connection.cursor():  # connect and run the health check before the transaction starts
        pass
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    elif connection.vendor == "sqlite":
        # The configured IMMEDIATE mode would take the write lock for the whole walk; a DEFERRED
        # read transaction in WAL mode sees one snapshot and lets writers go on.
        # transaction_mode is the SQLite backend's own (Django 5.1), not in django-stubs.
        configured = connection.transaction_mode  # type: ignore[attr-defined]
        connection.transaction_mode = "DEFERRED"  # type: ignore[attr-defined]
        try:
            with transaction.atomic():
                connection.transaction_mode = configured  # type: ignore[attr-defined]
                yield
        finally:
            connection.transaction_mode = configured  # type: ignore[attr-defined]
    else:
        with transaction.atomic():
            yield


def _verify(report: VerificationReport, account_ids: list[int] | None) -> None:

    accounts = Account.objects.order_by("pk").values_list(*_ACCOUNT_FIELDS, named=True)
    entries = Entry.objects.order_by("account_id", "seq").values_list(*_ENTRY_FIELDS, named=True)
    if account_ids is not None:
        accounts = accounts.filter(pk__in=account_ids)
        entries = entries.filter(account_id__in=account_ids)

    entry_stream = entries.iterator(chunk_size=CHUNK_SIZE)
    pending = next(entry_stream, None)
    orphans: dict[int, list[int]] = {}  # entries whose account row is gone: account id -> [first seq, count]
    for account in accounts.iterator(chunk_size=CHUNK_SIZE):
        walk = ChainWalk(account)
        while pending is not None and pending.account_id <= account.id:
            if pending.account_id == account.id:
                walk.step(pending)
            else:
                orphans.setdefault(pending.account_id, [pending.seq, 0])[1] += 1
            pending = next(entry_stream, None)
        for problem in walk.finish():
            report.add(problem)
        report.accounts_checked += 1
        report.entries_checked += walk.count

    while pending is not None:
        orphans.setdefault(pending.account_id, [pending.seq, 0])[1] += 1
        pending = next(entry_stream, None)
    for account_id, (seq, count) in sorted(orphans.items()):
        report.entries_checked += count
        report.add(
            Problem(
                "account_missing",
                account_id=account_id,
                seq=seq,
                message=f"account {account_id}: {count} entries from seq {seq} on, but the account row does not exist",
            )
        )
    _check_transactions(report, account_ids)


def _check_transactions(report: VerificationReport, account_ids: list[int] | None) -> None:
    entries = Entry.objects.all()
    if account_ids is not None:
        touched = Entry.objects.filter(account_id__in=account_ids).values("transaction_id")
        entries = entries.filter(transaction_id__in=touched)
    sums = entries.values("transaction_id").annotate(total=Sum("amount"), legs=Count("pk")).order_by("transaction_id")
    for row in sums.iterator(chunk_size=CHUNK_SIZE):
        report.transactions_checked += 1
        if row["total"] != 0:
            report.add(
                Problem(
                    "transaction_unbalanced",
                    transaction_id=row["transaction_id"],
                    message=f"transaction {row['transaction_id']}: its {row['legs']} entries sum to "
                    f"{row['total']}, not 0",
                )
            )
    foreign = (
        entries.exclude(currency=F("transaction__currency"))
        .order_by("account_id", "seq")
        .values_list("account_id", "seq", "transaction_id", "currency", "transaction__currency")
    )
    for account_id, seq, transaction_id, currency, tx_currency in foreign.iterator(chunk_size=CHUNK_SIZE):
        report.add(
            Problem(
                "transaction_currency_mismatch",
                account_id=account_id,
                seq=seq,
                transaction_id=transaction_id,
                message=f"account {account_id} seq {seq}: entry in {currency}, "
                f"its transaction {transaction_id} in {tx_currency}",
            )
        )


@dataclass
class _Mismatch:
    entry: Any
    prev_checksum: str


class ChainWalk:
    """Checks one account's entries, fed in seq order, then the account row against them."""

    def __init__(self, account: Account):
        self.account = account
        self.prev_checksum = chain.GENESIS
        self.prev_balance = 0
        self.expected_seq = 1
        self.total = 0
        self.count = 0
        self.last: Entry | None = None
        self.problems: list[Problem] = []
        self.mismatches: list[_Mismatch] = []

    def step(self, entry: Entry) -> None:
        self.count += 1
        self.total += entry.amount
        # After a gap the predecessor is unknown: the link and balance_after cannot be checked.
        linked = entry.seq == self.expected_seq
        if not linked:
            missing = _seq_range(self.expected_seq, entry.seq - 1)
            self._problem(
                "sequence_gap",
                self.expected_seq,
                entry.transaction_id,
                f"{missing} missing: the chain jumps from seq {self.expected_seq - 1} to {entry.seq}",
            )
        if linked and _checksum(entry, self.prev_checksum) != entry.checksum:
            self._problem(
                "checksum_mismatch",
                entry.seq,
                entry.transaction_id,
                "the entry's fields and its predecessor do not hash to its checksum",
            )
            self.mismatches.append(_Mismatch(entry, self.prev_checksum))
        if linked and entry.balance_after != self.prev_balance + entry.amount:
            self._problem(
                "balance_after_mismatch",
                entry.seq,
                entry.transaction_id,
                f"balance_after {entry.balance_after} != {self.prev_balance} + {entry.amount}",
            )
        if entry.currency != self.account.currency:
            self._problem(
                "currency_mismatch",
                entry.seq,
                entry.transaction_id,
                f"entry in {entry.currency}, account in {self.account.currency}",
            )
        self.prev_checksum, self.prev_balance = entry.checksum, entry.balance_after
        self.expected_seq = entry.seq + 1
        self.last = entry

    def finish(self) -> list[Problem]:
        account = self.account
        last_seq = self.last.seq if self.last else 0
        last_checksum = self.last.checksum if self.last else chain.GENESIS
        if account.entry_seq > last_seq:
            self._problem(
                "sequence_gap",
                last_seq + 1,
                None,
                f"{_seq_range(last_seq + 1, account.entry_seq)} missing from the end of the chain "
                f"(the account's head is seq {account.entry_seq})",
            )
        elif account.entry_seq < last_seq:
            self._problem(
                "chain_head_mismatch",
                account.entry_seq + 1,
                None,
                f"{_seq_range(account.entry_seq + 1, last_seq)} beyond the account's head (seq {account.entry_seq})",
            )
        elif account.chain_head != last_checksum:
            self._problem(
                "chain_head_mismatch",
                last_seq or None,
                None,
                f"the account's chain_head is not the checksum of its last entry (seq {last_seq})",
            )
        if account.balance != self.total:
            self._problem(
                "balance_mismatch",
                last_seq or None,
                None,
                f"balance {account.balance} != {self.total}, the sum of its {self.count} entries",
            )
        if account.held < 0:
            self._problem("held_negative", None, None, f"held is {account.held}")
        if not account.allow_negative and account.balance - account.held < 0:
            self._problem(
                "available_negative", None, None, f"balance {account.balance} - held {account.held} is negative"
            )
        if 2 <= len(self.mismatches) <= MAX_MISMATCHES_DIAGNOSED:
            self._explain_swaps()
        return self.problems

    def _problem(self, code: str, seq: int | None, transaction_id: int | None, detail: str) -> None:
        where = f"account {self.account.id}" + (f" seq {seq}" if seq is not None else "")
        self.problems.append(Problem(code, f"{where}: {detail}", self.account.id, seq, transaction_id))

    def _explain_swaps(self) -> None:
        """Replace the noise of two swapped entries (checksum and balance_after failures at both
        places and after each) by one ``entry_reordered`` problem per entry, when the swapped-back
        order verifies: then the rows are authentic and only their order was changed."""
        by_seq = {m.entry.seq: m for m in self.mismatches}
        for first in self.mismatches:
            for second in self.mismatches:
                a, b = first.entry, second.entry
                if a.seq >= b.seq or a.seq not in by_seq or b.seq not in by_seq:
                    continue
                # ``b`` belongs at a.seq and ``a`` at b.seq.
                if _checksum(b, first.prev_checksum, seq=a.seq) != b.checksum:
                    continue
                prev_for_a = b.checksum if b.seq == a.seq + 1 else second.prev_checksum
                if _checksum(a, prev_for_a, seq=b.seq) != a.checksum:
                    continue
                verified = {a.seq, b.seq}
                for after, true_prev in ((a.seq + 1, b.checksum), (b.seq + 1, a.checksum)):
                    follower = by_seq.get(after)
                    if (
                        follower is not None
                        and after not in verified
                        and _checksum(follower.entry, true_prev) == follower.entry.checksum
                    ):
                        verified.add(after)
                self._replace_with_swap(a, b, verified)
                del by_seq[a.seq], by_seq[b.seq]

    def _replace_with_swap(self, a: Entry, b: Entry, verified: set[int]) -> None:
        """Drop what the swap of ``a`` and ``b`` explains; ``verified`` are the seqs whose checksum
        verifies in the swapped-back order."""
        displaced = {a.seq, a.seq + 1, b.seq, b.seq + 1}
        last_seq = self.last.seq if self.last else 0

        def explained(problem: Problem) -> bool:
            if problem.code == "checksum_mismatch":
                return problem.seq in verified
            if problem.code == "balance_after_mismatch":
                return problem.seq in displaced
            if problem.code == "chain_head_mismatch":
                return b.seq == last_seq and self.account.chain_head == a.checksum
            return False

        self.problems = [problem for problem in self.problems if not explained(problem)]
        self._problem(
            "entry_reordered",
            a.seq,
            a.transaction_id,
            f"this entry verifies at seq {b.seq}: it was swapped with the entry now at seq {b.seq}",
        )
        self._problem(
            "entry_reordered",
            b.seq,
            b.transaction_id,
            f"this entry verifies at seq {a.seq}: it was swapped with the entry now at seq {a.seq}",
        )


def _checksum(entry: Entry, prev_checksum: str, *, seq: int | None = None) -> str:
    return chain.entry_checksum(
        prev_checksum=prev_checksum,
        account_id=entry.account_id,
        seq=entry.seq if seq is None else seq,
        transaction_id=entry.transaction_id,
        amount=entry.amount,
        currency=entry.currency,
        balance_after=entry.balance_after,
        created_at=entry.created_at,
    )


def _seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}..{last}"
