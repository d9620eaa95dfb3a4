"""The sealer: one global order for the journal, chained with HMAC and anchored outside the database.

Calls write journal records with no global lock (ledger/journal.py); the sealer, one at a time
(a transaction-scoped advisory lock; beat runs it every few seconds in the worker), gives every
committed and not yet sealed record the next position, in record id order, and chains them:

    link(p) = HMAC(key, "link|p|record id|record mac|link(p-1)")

A seal names the positions it covers, the chain head after them, cumulative counts and
per-currency sums, and its own MAC. It is committed, then appended to the external sink
(ledger/seal_sink.py); a seal committed but not yet appended (a crash in between) is appended first
by the next round.

Which records are final: a record's ``txid`` is the PostgreSQL transaction that wrote it. The sealer
reads its snapshot's xmin first: every transaction with a smaller id has ended, and every record not
yet visible belongs to a transaction still running, whose id is at least that xmin. So the next
round need only look at records with ``txid >= horizon`` (the previous round's xmin): the cost is
proportional to what came since, never to the history. Record ids are drawn at the journal INSERT,
which follows the call's row locks, so two records that touched the same row are in id order, and
so in position order, as they committed. On SQLite writers are serialized, so the records after the
highest sealed id are the new ones.

Window of exposure: a record committed and not yet sealed (a few seconds; LEDGER_SEAL_WINDOW_SECONDS
bounds what the verifier accepts) can be deleted with its effects by an insider unseen; once sealed
and appended outside, any change to it, its rows, or the order is named by the verifier.

Before sealing, the database must extend the newest external seal: same seal at that number, same
head. If it does not (restored from an old backup, truncated, seals deleted or replayed), the sealer
refuses, says so at CRITICAL, and seals nothing until someone looks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ledger import chain, integrity_gauges
from ledger.journal import canonical_json, record_verifies
from ledger.models import JournalPosition, JournalSeal
from ledger.seal_sink import seal_sink

log = logging.getLogger(__name__)

SEALER_LOCK_ID = 0x42414C5345414C  # pg_advisory_xact_lock key of the one sealer ("BALSEAL")
MAX_RECORDS_PER_SEAL = 5000
SEAL_FIELDS = ("id", "first_position", "last_position", "prev_head", "head", "horizon", "totals", "sealed_at")


class SealRefused(Exception):
    """The database does not extend the newest external seal: nothing is sealed."""


def _hmac(message: str) -> str:
    return hmac.new(settings.LEDGER_HMAC_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def link(prev_head: str, position: int, record_id: int, record_mac: str) -> str:
    return _hmac(f"link|{position}|{record_id}|{record_mac}|{prev_head}")


def seal_fields(seal: JournalSeal | dict[str, Any]) -> dict[str, Any]:
    """A seal's signed fields, alike from a row or from a line of the sink."""
    get: Any = seal.get if isinstance(seal, dict) else lambda name: getattr(seal, name)
    sealed_at = get("sealed_at")
    return {
        "id": int(get("id")),
        "first_position": int(get("first_position")),
        "last_position": int(get("last_position")),
        "prev_head": str(get("prev_head")),
        "head": str(get("head")),
        "horizon": int(get("horizon")),
        "totals": get("totals"),
        "sealed_at": sealed_at if isinstance(sealed_at, str) else chain.format_timestamp(sealed_at),
    }


def seal_mac(seal: JournalSeal | dict[str, Any]) -> str:
    return _hmac("seal|v1|" + canonical_json(seal_fields(seal)))


def seal_line(seal: JournalSeal) -> dict[str, Any]:
    return seal_fields(seal) | {"mac": seal.mac}


def seal_verifies(seal: JournalSeal | dict[str, Any]) -> bool:
    mac = seal.get("mac") if isinstance(seal, dict) else seal.mac
    try:
        return hmac.compare_digest(seal_mac(seal), str(mac))
    except (KeyError, TypeError, ValueError):
        return False


def journal_seal(*, limit: int = MAX_RECORDS_PER_SEAL) -> dict[str, Any]:
    """Seal every committed, unsealed journal record (up to ``limit``); append the seal outside.
    -> {"seal": id or None, "records": how many, "anchored": seals appended to the sink}"""
    sink = seal_sink()
    try:
        result = _journal_seal(sink, limit)
    except SealRefused:
        integrity_gauges.seal_refused()
        raise
    return result


def _journal_seal(sink: Any, limit: int) -> dict[str, Any]:
    with transaction.atomic():
        postgres = connection.vendor == "postgresql"
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_ID])
        last = JournalSeal.objects.order_by("-id").first()
        unanchored = _unanchored(last, sink.last())
        horizon, records = _unsealed(last, postgres=postgres, limit=limit)
        seal = _seal(last, records, horizon if len(records) < limit else (last.horizon if last else 0))
    for each in [*unanchored, *([seal] if seal else [])]:
        sink.append(seal_line(each))
    if seal:
        log.info("sealed journal positions %s-%s (seal %s)", seal.first_position, seal.last_position, seal.id)
    newest = seal or last
    if newest is not None:
        integrity_gauges.seal_recorded(newest.id, newest.last_position, newest.sealed_at)
    else:
        integrity_gauges.sealer_succeeded()  # an empty journal: the sealer ran, nothing to seal
    return {"seal": seal.id if seal else None, "records": len(records), "anchored": len(unanchored) + bool(seal)}


def _unanchored(last: JournalSeal | None, anchored: dict[str, Any] | None) -> list[JournalSeal]:
    """The database's seals the sink has not got yet, once sure the database extends the sink's
    newest seal; else ``SealRefused``."""
    if anchored is not None:
        if "bad" in anchored or not seal_verifies(anchored):
            _refuse(f"the newest seal in {seal_sink()} does not verify: {str(anchored)[:200]}")
        number = int(anchored["id"])
        if last is None or last.id < number:
            _refuse(
                f"the database ends at seal {last.id if last else 'none'} but {seal_sink()} has seal {number}: "
                "restored from an older backup, truncated, or its seals deleted"
            )
        ours = JournalSeal.objects.filter(id=number).first()
        if ours is None or seal_line(ours) != seal_fields(anchored) | {"mac": anchored["mac"]}:
            _refuse(f"seal {number} in the database is not the one in {seal_sink()}: replaced or replayed")
    after = anchored["id"] if anchored else 0
    pending = list(JournalSeal.objects.filter(id__gt=after).order_by("id"))
    for seal in pending:
        if not seal_verifies(seal):
            _refuse(f"seal {seal.id} in the database does not verify; it is not anchored")
    return pending


def _refuse(why: str) -> None:
    log.critical("the journal is NOT sealed: %s", why)
    raise SealRefused(why)


def _unsealed(last: JournalSeal | None, *, postgres: bool, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """The snapshot's horizon (read first) and the unsealed records, in id order."""
    columns = "id, txid, scope, key, operation, request_hash, response, is_error, rows, created_at, mac"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            horizon = int(cursor.fetchone()[0])
            cursor.execute(
                f"SELECT {columns} FROM ledger_journalrecord r WHERE r.txid >= %s AND NOT EXISTS "
                "(SELECT 1 FROM ledger_journalposition p WHERE p.record_id = r.id) ORDER BY r.id LIMIT %s",
                [last.horizon if last else 0, limit],
            )
        else:
            horizon = 0
            cursor.execute(
                f"SELECT {columns} FROM ledger_journalrecord WHERE id > "
                "(SELECT COALESCE(MAX(record_id), 0) FROM ledger_journalposition) ORDER BY id LIMIT %s",
                [limit],
            )
        names = [column.strip() for column in columns.split(",")]
        return horizon, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _seal(last: JournalSeal | None, records: list[dict[str, Any]], horizon: int) -> JournalSeal | None:
    if not records:
        return None
    head = last.head if last else ""
    position = last.last_position if last else 0
    totals = seal_totals(last.totals if last else {}, records)
    positions = []
    for record in records:
        position += 1
        if not record_verifies(record):
            log.critical("journal record %s does not verify: sealed at position %s to be named", record["id"], position)
        head = link(head, position, int(record["id"]), str(record["mac"]))
        positions.append(position)
    seal = JournalSeal(
        id=(last.id if last else 0) + 1,
        first_position=positions[0],
        last_position=positions[-1],
        prev_head=last.head if last else "",
        head=head,
        horizon=horizon,
        totals=totals,
        sealed_at=timezone.now(),
        mac="",
    )
    seal.mac = seal_mac(seal)
    seal.save(force_insert=True)
    JournalPosition.objects.bulk_create(
        JournalPosition(position=p, record_id=int(r["id"]), seal_id=seal.id)
        for p, r in zip(positions, records, strict=True)
    )
    return seal


def seal_totals(previous: dict[str, Any], records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative counts, and per currency the sum of every credit posted."""
    totals = totals_copy(previous)
    for record in records:
        totals_add(totals, json.loads(record["rows"]) if record["rows"] else {})
    return totals


def totals_copy(totals: dict[str, Any]) -> dict[str, Any]:
    return {"records": 0, "entries": 0, "transactions": 0, "credits": {}} | json.loads(json.dumps(totals))


def totals_add(totals: dict[str, Any], rows: dict[str, Any]) -> None:
    """Count one record (its ``rows``, parsed) into ``totals``."""
    transactions = rows.get("ledger_transaction", {})
    entries = rows.get("ledger_entry", {})
    totals["records"] += 1
    totals["transactions"] += len(transactions)
    totals["entries"] += len(entries)
    credits = totals["credits"]
    for entry in entries.values():
        tx = transactions.get(str(entry["transaction_id"]))
        if tx is not None and entry["amount"] > 0:
            credits[tx["currency"]] = credits.get(tx["currency"], 0) + entry["amount"]
