"""The verifier's journal half: seals, their external anchor, the records, and every journaled row.

What each check defeats (docs/architecture.md, "Tamper evidence"):
- seals: each seal's MAC, the chain from seal to seal, and the newest seal of the external sink,
  which the database must still hold unchanged: a database restored from an old backup, truncated,
  or with seals deleted or replayed no longer reaches it;
- records: every sealed position has its record, whose MAC verifies, and the links of each seal
  recompute its head; records left unsealed past LEDGER_SEAL_WINDOW_SECONDS are named;
- rows: every row of a journaled table equals the newest image the journal holds of it; a row the
  journal never wrote, or one it wrote that is gone, is named with its table and key. (An
  idempotency key and its first answer live in the journal record alone, under its MAC.)

``journal_check(report, since=None)`` checks everything (the full run); ``since`` (a seal id)
checks only what came after that seal, at a cost proportional to the new records: their seals,
their records, the rows they wrote as they stand now, and each new entry's link to its predecessor.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from ledger import chain
from ledger.journal import JOURNALED, canonical_json, normal, record_verifies
from ledger.journal_reads import current_rows, stream
from ledger.models import Entry, JournalSeal
from ledger.seal_sink import seal_sink
from ledger.sealing import link, seal_fields, seal_verifies, totals_add, totals_copy

_RECORD_COLUMNS = (
    "id",
    "txid",
    "scope",
    "key",
    "operation",
    "request_hash",
    "response",
    "is_error",
    "rows",
    "created_at",
    "mac",
)


def _digest(value: dict[str, Any]) -> int:
    """A fingerprint of an image, compared only within this run (Python's keyed hash, seeded anew
    for each process: no one can aim a forged row at it). A flat image hashes as its sorted items,
    a nested one (an answer) as its canonical JSON."""
    try:
        return hash(tuple(sorted(value.items())))
    except TypeError:  # unhashable: a nested value
        return hash(canonical_json(value))


class JournalCheck:
    """One run's state: the newest image of every row, by (table, key), and where it came from."""

    def __init__(self, report: Any, add: Callable[..., None], *, with_entries: bool) -> None:
        self.report, self.add, self.with_entries = report, add, with_entries
        self.latest: dict[tuple[str, str], tuple[int, int, int | None]] = {}
        self.records_checked = 0

    # -- records ----------------------------------------------------------------------------
    def take(self, record: dict[str, Any], position: int | None) -> None:
        """Check a record's MAC and keep the images it holds."""
        self.records_checked += 1
        if not record_verifies(record):
            self.add(
                "journal_record_invalid",
                f"journal record {record['id']}"
                + (f" at position {position}" if position else "")
                + ": its fields do not verify against its MAC (edited or forged)",
                table="ledger_journalrecord",
                row_id=str(record["id"]),
                position=position,
            )
        try:
            rows = json.loads(record["rows"]) if record["rows"] else {}
        except ValueError:
            rows = {}
        record["parsed_rows"] = rows
        for table, images in rows.items():
            if table == "ledger_entry" and not self.with_entries:
                continue
            for key, row_image in images.items():
                self.latest[(table, key)] = (_digest(row_image), int(record["id"]), position)

    # -- rows -------------------------------------------------------------------------------
    def compare(self, table: str, key: str, current: dict[str, Any] | None) -> None:
        """Hold a row (None: not in the database) to its newest image."""
        held = self.latest.pop((table, key), None)
        where = _where(table, key)
        if held is None:
            if current is not None:
                self.add(
                    "row_not_journaled",
                    f"{table} {key}: no journal record wrote this row (inserted or re-keyed)",
                    table=table,
                    row_id=key,
                    **where,
                )
            return
        digest, record_id, position = held
        at = f"journal record {record_id}" + (f" (position {position})" if position else "")
        if current is None:
            self.add(
                "row_missing",
                f"{table} {key}: written by {at}, but the row is gone",
                table=table,
                row_id=key,
                position=position,
                **where,
            )
        elif _digest(current) != digest:
            written = _written_image(table, key, record_id)
            changed = [
                f"{name} ({written.get(name)!r} in the journal, {current.get(name)!r} now)"
                for name in current
                if written.get(name) != current.get(name)
            ]
            self.add(
                "row_mismatch",
                f"{table} {key}: {', '.join(changed) or 'its columns'} differ from {at}",
                table=table,
                row_id=key,
                position=position,
                **where,
            )
            if table == "accounts_account":
                self._entries_cut(int(key), written, current, position)

    def _entries_cut(self, account_id: int, written: dict[str, Any], current: dict[str, Any], position: Any) -> None:
        """An account whose chain ends before the journal's head for it lost entries at its tail:
        name them where they were (the chain alone looks whole when the row was put back too)."""
        kept, head = int(current.get("entry_seq") or 0), int(written.get("entry_seq") or 0)
        if head > kept:
            seqs = f"seq {kept + 1}" if head == kept + 1 else f"seq {kept + 1}..{head}"
            self.add(
                "sequence_gap",
                f"account {account_id}: {seqs} written by the journal (position {position}) are gone from its chain",
                account_id=account_id,
                seq=kept + 1,
                table="ledger_entry",
                row_id=f"{account_id}:{kept + 1}",
                position=position,
            )

    def compare_rest(self) -> None:
        """Everything imaged that no table row claimed is gone."""
        for (table, key), (_, record_id, position) in sorted(self.latest.items(), key=lambda item: item[0]):
            self.add(
                "row_missing",
                f"{table} {key}: written by journal record {record_id}, but the row is gone",
                table=table,
                row_id=key,
                position=position,
                **_where(table, key),
            )
        self.latest.clear()


def _where(table: str, key: str) -> dict[str, Any]:
    if table == "accounts_account":
        return {"account_id": int(key)}
    if table == "ledger_entry":
        account_id, seq = key.split(":")
        return {"account_id": int(account_id), "seq": int(seq)}
    if table == "ledger_transaction":
        return {"transaction_id": int(key)}
    return {}


def _written_image(table: str, key: str, record_id: int) -> dict[str, Any]:
    """What journal record ``record_id`` wrote of the row (read again: only a mismatch needs it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rows FROM ledger_journalrecord WHERE id = %s",
            [record_id],
        )
        found = cursor.fetchone()
    if found is None:
        return {}
    image: dict[str, Any] = json.loads(found[0]).get(table, {}).get(key, {})
    return image


# -- the run ------------------------------------------------------------------------------------
def journal_check(report: Any, add: Callable[..., None], *, since: int | None = None) -> int | None:
    """Add every journal problem to ``report``; -> the newest seal checked (None: no seal)."""
    check = JournalCheck(report, add, with_entries=since is not None)
    seals = list(JournalSeal.objects.filter(id__gte=since or 0).order_by("id"))
    start = None
    if since is not None:
        start = seals.pop(0) if seals and seals[0].id == since else None
        if start is not None and not seal_verifies(start):
            add(
                "seal_invalid",
                f"seal {start.id}, where the last verification stopped, does not verify against its MAC",
                table="ledger_journalseal",
                row_id=str(start.id),
                position=start.last_position,
            )
        if start is None:
            add(
                "seal_missing",
                f"seal {since}, where the last verification stopped, is not in the database",
                table="ledger_journalseal",
                row_id=str(since),
            )
    _anchor_check(add, seals if since is None else [*([start] if start else []), *seals], full=since is None)
    newest = _seal_chain(check, add, start, seals)
    _unsealed(check, add, newest, full=since is None)
    if since is None:
        for table in JOURNALED:
            if table != "ledger_entry":
                for key, current in current_rows(table):
                    check.compare(table, key, current)
        check.compare_rest()
    else:
        _compare_new(check, add)
    report.records_checked = check.records_checked
    return newest.id if newest else (start.id if start else None)


def _anchor_check(add: Callable[..., None], seals: list[JournalSeal], *, full: bool) -> None:
    sink = seal_sink()
    ours = {seal.id: seal for seal in seals}
    newest_ours = JournalSeal.objects.order_by("-id").values_list("id", flat=True).first()
    lines = list(sink.seals()) if full else [line for line in [sink.last()] if line]
    newest_anchored = None
    for line in lines:
        if "bad" in line or not seal_verifies(line):
            add(
                "external_seal_invalid",
                f"a line of {sink} is not a valid seal: {str(line)[:120]}",
                table="external",
                row_id=str(line.get("line", "")),
            )
            continue
        number = int(line["id"])
        newest_anchored = max(newest_anchored or 0, number)
        seal = ours.get(number) or JournalSeal.objects.filter(id=number).first()
        if seal is None:
            add(
                "seal_missing",
                f"seal {number} (positions to {line['last_position']}) is in {sink} but not in the database: "
                "rolled back, truncated or deleted",
                table="ledger_journalseal",
                row_id=str(number),
                position=int(line["last_position"]),
            )
        elif seal_fields(seal) | {"mac": seal.mac} != seal_fields(line) | {"mac": line["mac"]}:
            add(
                "seal_mismatch",
                f"seal {number} in the database differs from the one in {sink}",
                table="ledger_journalseal",
                row_id=str(number),
                position=seal.last_position,
            )
    if newest_ours is not None and (newest_anchored or 0) < newest_ours:
        unanchored = JournalSeal.objects.filter(
            id__gt=newest_anchored or 0, sealed_at__lt=timezone.now() - _window()
        ).first()
        if unanchored is not None:
            add(
                "seal_not_anchored",
                f"seal {unanchored.id} is older than the seal window but not in {sink}",
                table="ledger_journalseal",
                row_id=str(unanchored.id),
            )


def _window() -> timedelta:
    return timedelta(seconds=settings.LEDGER_SEAL_WINDOW_SECONDS)


def _seal_chain(
    check: JournalCheck, add: Callable[..., None], start: JournalSeal | None, seals: list[JournalSeal]
) -> JournalSeal | None:
    """Walk the positions of ``seals`` (after ``start``), checking seals, links and records."""
    by_id = {seal.id: seal for seal in seals}
    previous = start
    for seal in seals:
        if not seal_verifies(seal):
            add(
                "seal_invalid",
                f"seal {seal.id} does not verify against its MAC (edited or forged)",
                table="ledger_journalseal",
                row_id=str(seal.id),
                position=seal.last_position,
            )
        expected_id = previous.id + 1 if previous else 1
        expected_first = previous.last_position + 1 if previous else 1
        expected_prev = previous.head if previous else ""
        if (seal.id, seal.first_position, seal.prev_head) != (expected_id, expected_first, expected_prev):
            add(
                "seal_chain_broken",
                f"seal {seal.id} does not follow seal {previous.id if previous else 'none'} "
                f"(expected seal {expected_id} from position {expected_first})",
                table="ledger_journalseal",
                row_id=str(seal.id),
                position=seal.first_position,
            )
        previous = seal
    if not seals:
        return start
    columns = ", ".join(f"r.{c}" for c in _RECORD_COLUMNS)
    first = seals[0].first_position
    rows = stream(
        f"SELECT p.position, p.seal_id, p.record_id, {columns} FROM ledger_journalposition p "
        "LEFT JOIN ledger_journalrecord r ON r.id = p.record_id WHERE p.position >= %s ORDER BY p.position",
        [first],
    )
    head, expected, current_seal, broken = (start.head if start else ""), first, None, False
    totals = totals_copy(start.totals if start else {})
    for position, seal_id, record_id, *values in rows:
        owner = by_id.get(seal_id)
        if position > expected:
            add(
                "journal_position_missing",
                f"positions {expected}..{position - 1} of the journal are gone",
                table="ledger_journalposition",
                row_id=str(expected),
                position=expected,
            )
            broken = True
        expected = position + 1
        if owner is None or not (owner.first_position <= position <= owner.last_position):
            add(
                "journal_position_invalid",
                f"position {position} names seal {seal_id}, which does not cover it",
                table="ledger_journalposition",
                row_id=str(position),
                position=position,
            )
            if values[0] is not None:  # its record still vouches for the rows it wrote
                check.take(dict(zip(_RECORD_COLUMNS, values, strict=True)), position)
            continue
        if owner is not current_seal:
            head = owner.prev_head
            current_seal, broken = owner, False
        record = dict(zip(_RECORD_COLUMNS, values, strict=True))
        if record["id"] is None:
            add(
                "journal_record_missing",
                f"journal record {record_id} (position {position}) is gone",
                table="ledger_journalrecord",
                row_id=str(record_id),
                position=position,
            )
            broken = True
        else:
            check.take(record, position)
            totals_add(totals, record["parsed_rows"])
            head = link(head, position, int(record_id), str(record["mac"]))
        if position == owner.last_position:
            if not broken and head != owner.head:
                add(
                    "seal_head_mismatch",
                    f"the links of seal {owner.id}'s records do not make its head (edited, swapped or re-linked)",
                    table="ledger_journalseal",
                    row_id=str(owner.id),
                    position=position,
                )
            if not broken and totals != owner.totals:
                add(
                    "seal_totals_mismatch",
                    f"seal {owner.id}'s totals differ from its records",
                    table="ledger_journalseal",
                    row_id=str(owner.id),
                    position=position,
                )
            totals = totals_copy(owner.totals)
    if expected <= seals[-1].last_position:
        add(
            "journal_position_missing",
            f"positions {expected}..{seals[-1].last_position} of the journal are gone",
            table="ledger_journalposition",
            row_id=str(expected),
            position=expected,
        )
    return seals[-1]


def _unsealed(check: JournalCheck, add: Callable[..., None], newest: JournalSeal | None, *, full: bool) -> None:
    columns = ", ".join(f"r.{c}" for c in _RECORD_COLUMNS)
    unpositioned = "NOT EXISTS (SELECT 1 FROM ledger_journalposition p WHERE p.record_id = r.id)"
    if full or newest is None:
        where, params = unpositioned, []
    elif connection.vendor == "postgresql":
        where, params = f"r.txid >= %s AND {unpositioned}", [newest.horizon]
    else:
        where, params = "r.id > (SELECT COALESCE(MAX(record_id), 0) FROM ledger_journalposition)", []
    stale = chain.format_timestamp(timezone.now() - _window())
    for values in stream(f"SELECT {columns} FROM ledger_journalrecord r WHERE {where} ORDER BY r.id", params):
        record = dict(zip(_RECORD_COLUMNS, values, strict=True))
        check.take(record, None)
        if normal("time", record["created_at"]) < stale:
            add(
                "journal_record_unsealed",
                f"journal record {record['id']} is older than the seal window and not sealed (is the sealer running?)",
                table="ledger_journalrecord",
                row_id=str(record["id"]),
            )


def _compare_new(check: JournalCheck, add: Callable[..., None]) -> None:
    """The rows the new records wrote, as they stand; each new entry linked to its predecessor."""
    keys: dict[str, list[str]] = {}
    for table, key in list(check.latest):
        keys.setdefault(table, []).append(key)
    for table, wanted in keys.items():
        found = dict(current_rows(table, wanted))
        for key in wanted:
            check.compare(table, key, found.get(key))
    _links(add, keys.get("ledger_entry", []))


def _links(add: Callable[..., None], keys: list[str]) -> None:
    wanted: set[tuple[int, int]] = set()
    for key in keys:
        account_id, seq = (int(part) for part in key.split(":"))
        wanted |= {(account_id, seq), (account_id, seq - 1)}
    by_key: dict[tuple[int, int], Any] = {}
    pairs = sorted(wanted)
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        query = Q()
        for account_id, seq in chunk:
            query |= Q(account_id=account_id, seq=seq)
        for entry in Entry.objects.filter(query):
            by_key[(entry.account_id, entry.seq)] = entry
    for key in keys:
        account_id, seq = (int(part) for part in key.split(":"))
        found, prev = by_key.get((account_id, seq)), by_key.get((account_id, seq - 1))
        if found is None or (seq > 1 and prev is None):
            continue  # named as row_missing / by the full run's chain walk
        prev_checksum = prev.checksum if prev else chain.GENESIS
        prev_balance = prev.balance_after if prev else 0
        if (
            chain.checksum_of(found, prev_checksum) != found.checksum
            or found.balance_after != prev_balance + found.amount
        ):
            add(
                "checksum_mismatch",
                f"account {account_id} seq {seq}: the entry does not link to its predecessor",
                account_id=account_id,
                seq=seq,
                transaction_id=found.transaction_id,
                table="ledger_entry",
                row_id=key,
            )
