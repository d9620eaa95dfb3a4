"""The journal: one record per committed operation, naming every money row it wrote, as it wrote it.

A call's ``Work`` gathers the rows it writes (``journal_row``) and, when it commits, sends one
``ledger_journalrecord`` INSERT with the COMMIT (same round trip, same transaction): the images of
those rows and, for an idempotent call, its scope, key, request hash and answer. The record's ``mac``
is HMAC-SHA-256 with LEDGER_HMAC_KEY over all of it, computed here from what Python decided, so a
database insider can neither forge a record nor edit one unseen. The sealer (ledger/sealing.py)
gives records their global order and anchors it outside the database; the verifier
(ledger/journal_verify.py) holds every journaled table to the latest image of each of its rows.

An image is the row's money-deciding columns, each in one canonical form (``image``): the same
function renders what a call wrote and what the verifier reads back, so the two can only agree
when the row is as it was written. Timestamps that only say when a row was touched
(``updated_at``) are left out; everything that decides who owns what is in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from ledger import chain

# table -> ((column, kind), ...). Kinds: int, str, bool, time (a moment), json (a JSON column).
JOURNALED: dict[str, tuple[tuple[str, str], ...]] = {
    "accounts_account": (
        ("kind", "str"),
        ("owner_ref", "str"),
        ("system_code", "str"),
        ("shard", "int"),
        ("currency", "str"),
        ("balance", "int"),
        ("held", "int"),
        ("allow_negative", "bool"),
        ("status", "str"),
        ("version", "int"),
        ("entry_seq", "int"),
        ("chain_head", "str"),
    ),
    "ledger_transaction": (
        ("kind", "str"),
        ("currency", "str"),
        ("actor", "str"),
        ("metadata", "json"),
        ("created_at", "time"),
    ),
    # Keyed by "account:seq" (entries get their ids from the database); the checksum covers the rest.
    "ledger_entry": (("transaction_id", "int"), ("amount", "int"), ("balance_after", "int"), ("checksum", "str")),
    "reservations_reservation": (
        ("account_id", "int"),
        ("table_id", "int"),
        ("user_id", "str"),
        ("currency", "str"),
        ("amount", "int"),
        ("committed_amount", "int"),
        ("status", "str"),
        ("expires_at", "time"),
        ("seat_id", "int"),
        ("transaction_id", "int"),
        ("created_by", "str"),
        ("ended_at", "time"),
        ("ended_by", "str"),
        ("end_reason", "str"),
    ),
    "tables_table": (("table_id", "str"), ("currency", "str"), ("status", "str"), ("chips", "int")),
    "tables_seat": (("table_id", "int"), ("user_id", "str"), ("account_id", "int"), ("status", "str")),
    # Keyed by "table pk:hand id" (hands get their ids from the database).
    "tables_hand": (
        ("figures_hash", "str"),
        ("rake", "int"),
        ("transaction_id", "int"),
        ("response", "json"),
        ("settled_by", "str"),
        ("created_at", "time"),
    ),
}

_INSERT_POSTGRES = (
    "INSERT INTO ledger_journalrecord (txid, scope, key, operation, request_hash, response, is_error, rows, "
    "created_at, mac) VALUES (pg_current_xact_id()::text::bigint, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_SQLITE = (
    "INSERT INTO ledger_journalrecord (txid, scope, key, operation, request_hash, response, is_error, rows, "
    "created_at, mac) VALUES (0, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


# orjson's output for what the ledger signs (dicts with str keys, lists, str, int64, bool, None) is
# byte for byte ``_canonical_json_stdlib``'s (tests/ledger/test_canonical_json.py), at a tenth of
# its cost: the MACs of records written before it still verify. Everything else (str and int
# subclasses, ints past 64 bits, datetimes, dataclasses) is passed through to raise, and goes the
# old way, so no value is ever rendered differently. No signed value is a float.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _canonical_json_stdlib(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """The one text of ``value`` that MACs sign: keys sorted, no spaces, non-ASCII as is."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _canonical_json_stdlib(value)


def normal(kind: str, value: Any) -> Any:
    """One column value in its canonical form, whether Python is writing it or a database read it
    back (SQLite answers text for moments and JSON, integers for booleans)."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    if kind == "time":
        from ledger.work import as_datetime

        moment = value if isinstance(value, datetime) else as_datetime(value)
        return chain.format_timestamp(moment)
    if kind == "json":
        parsed = json.loads(value) if isinstance(value, (str, bytes)) else value
        return canonical_json(parsed)
    return str(value)


def image(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical image of a row of ``table`` from its column values (an object's attributes or a
    mapping of column names)."""
    return {column: normal(kind, values[column]) for column, kind in JOURNALED[table]}


def row_values(row: Any, table: str) -> dict[str, Any]:
    """The journaled columns of a row object (``AccountRow``, ``ReservationRow``, a model instance...)."""
    return {column: getattr(row, column) for column, _ in JOURNALED[table]}


@dataclass
class JournalDraft:
    """What a ``Work`` will journal when it commits."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    operation: str = ""
    scope: str = ""
    key: str = ""
    request_hash: str = ""
    response: Any = None
    response_text: str = ""  # canonical_json(response): the record's and Redis's
    is_error: bool = False
    answered: bool = False

    def pending(self) -> bool:
        return bool(self.rows) or self.answered

    def forget_rows(self) -> None:
        self.rows.clear()


def journal_row(draft: JournalDraft, table: str, key: Any, values: Mapping[str, Any]) -> None:
    """Record the image of a row the work writes (a later write of the same row in the work wins)."""
    draft.rows.setdefault(table, {})[str(key)] = image(table, values)


def journal_answer(
    draft: JournalDraft, *, scope: str, key: str, operation: str, request_hash: str, response: Any, is_error: bool
) -> None:
    """Record the idempotency key and the answer of the call (with its rows in the same record)."""
    draft.scope, draft.key, draft.operation, draft.request_hash = scope, key, operation, request_hash
    draft.response, draft.is_error, draft.answered = response, is_error, True
    draft.response_text = canonical_json(response)


RECORD_FIELDS = ("scope", "key", "operation", "request_hash", "response", "is_error", "rows", "created_at")


def record_fields(draft: JournalDraft, created_at: datetime) -> dict[str, Any]:
    return {
        "scope": draft.scope,
        "key": draft.key,
        "operation": draft.operation or "unnamed",
        "request_hash": draft.request_hash,
        "response": draft.response_text if draft.answered else "",
        "is_error": bool(draft.is_error),
        "rows": canonical_json(draft.rows),
        "created_at": chain.format_timestamp(created_at),
    }


def record_mac(fields: Mapping[str, Any]) -> str:
    """HMAC of a journal record's fields (as ``record_fields`` renders them, or as read back)."""
    message = "journal|v1|" + canonical_json({name: fields[name] for name in RECORD_FIELDS})
    return hmac.new(settings.LEDGER_HMAC_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def insert_statement(draft: JournalDraft, *, postgres: bool, time: Any) -> tuple[str, list[Any]]:
    """The INSERT of the draft's record (``time``: the work's datetime adapter)."""
    now = timezone.now()
    fields = record_fields(draft, now)
    params = [
        fields["scope"],
        fields["key"],
        fields["operation"],
        fields["request_hash"],
        fields["response"],
        fields["is_error"],
        fields["rows"],
        time(now),
        record_mac(fields),
    ]
    return (_INSERT_POSTGRES if postgres else _INSERT_SQLITE), params


def read_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as read from the database, in the form ``record_mac`` takes."""
    return {
        "scope": row["scope"],
        "key": row["key"],
        "operation": row["operation"],
        "request_hash": row["request_hash"],
        "response": row["response"],
        "is_error": bool(row["is_error"]),
        "rows": row["rows"],
        "created_at": normal("time", row["created_at"]),
    }


def record_verifies(row: Mapping[str, Any]) -> bool:
    return hmac.compare_digest(record_mac(read_fields(row)), str(row["mac"]))
