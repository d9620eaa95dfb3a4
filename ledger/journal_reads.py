"""How the verifier reads the journaled tables: each row as its journal image, streamed in chunks
(a server-side cursor on PostgreSQL), all of a table or only the rows some keys name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connection

from ledger.journal import JOURNALED, image

FETCH = 2000
# How a journaled table's rows are keyed in the journal (ledger/journal.py).
KEY_COLUMNS = {"ledger_entry": ("account_id", "seq"), "tables_hand": ("table_id", "hand_id")}


def stream(sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH):
            yield from rows


def current_rows(table: str, keys: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, image) of the rows of ``table`` (all, or those of ``keys``)."""
    key_columns = KEY_COLUMNS.get(table, ("id",))
    columns = [*key_columns, *(column for column, _ in JOURNALED[table] if column not in key_columns)]
    select = f"SELECT {', '.join(columns)} FROM {table}"
    if keys is None:
        batches: Iterator[tuple[str, list[Any]]] = iter([(f"{select} ORDER BY {', '.join(key_columns)}", [])])
    else:
        batches = _keyed_batches(select, key_columns, keys)
    for sql, params in batches:
        for row in stream(sql, params):
            values = dict(zip(columns, row, strict=True))
            yield ":".join(str(values[c]) for c in key_columns), image(table, values)


def _keyed_batches(select: str, key_columns: tuple[str, ...], keys: list[str]) -> Iterator[tuple[str, list[Any]]]:
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        if len(key_columns) == 1:
            yield f"{select} WHERE id IN ({', '.join(['%s'] * len(chunk))})", [int(key) for key in chunk]
        else:
            first, second = key_columns
            pairs = [key.split(":", 1) for key in chunk]
            clause = " OR ".join([f"({first} = %s AND {second} = %s)"] * len(pairs))
            params: list[Any] = []
            for a, b in pairs:
                params += [int(a), int(b) if second == "seq" else b]
            yield f"{select} WHERE {clause}", params
