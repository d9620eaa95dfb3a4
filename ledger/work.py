"""One database transaction of a service call, sent in as few round trips as the call needs.

A call queues statements on a ``Work`` and ``send()`` sends every statement queued so far in one
round trip, filling in their results. The first send opens the transaction; ``commit()`` sends
whatever is still queued together with the COMMIT. So a call that locks and reads (in the global
lock order), decides in Python, then writes, is two round trips on PostgreSQL: ``BEGIN; <locks and
reads>`` and ``<writes>; COMMIT``. The rules stay in Python; the SQL here only locks, reads and
writes what Python decided.

How a batch travels:
- PostgreSQL: one simple-protocol query holding every statement, its parameters rendered as SQL
  literals here (``_rendered``: strings through libpq's PQescapeLiteral), as client-side binding
  does, without psycopg's per-call parsing of a long query. The server runs the statements in order,
  so locks are taken in the order they are queued; a failing statement skips the rest (the COMMIT
  too) and leaves the transaction to be rolled back. Each statement is prepared once per session
  and executed by name with its literals (ledger/prepared.py), in the same query. (A psycopg
  pipeline of protocol-level prepared statements measured 25-30% fewer calls/s here, for its
  per-statement cost in Python: bench/README.md.)
- SQLite (the embedded default, in process): the same statements one by one; ``BEGIN IMMEDIATE``
  takes the database's write lock at the start, and the row-lock clauses are dropped (``lock()``).

Inside a caller's ``transaction.atomic`` block (the ORM services that also post, and tests) the
work is a savepoint instead, and its after-commit hooks wait for the caller's commit.

No ORM write may run while a work is open outside an atomic block: Django believes the connection
is in autocommit mode, and its own ``atomic`` would commit this transaction half way.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, overload

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DataError, OperationalError, connections, transaction
from django.utils.dateparse import parse_datetime

from balance_project.deadlines import deadline_exceeded, time_left
from ledger import journal, prepared

log = logging.getLogger(__name__)

_savepoint_names = itertools.count(1)
# Less than this left of a call's budget, and no round trip starts: it could not finish in time.
MIN_TIME_FOR_ROUND_TRIP_SECONDS = 0.002
# SQLSTATEs of a statement ended by statement_timeout (query_canceled) or lock_timeout
# (lock_not_available).
_TIMEOUT_SQLSTATES = {"57014", "55P03"}
# SQLite's wait for the write lock when a call has no budget (settings: the connection's timeout).
SQLITE_BUSY_TIMEOUT_MS = 20_000


def _is_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in _TIMEOUT_SQLSTATES or "database is locked" in str(exc)


class Result:
    """The rows one queued statement answered, once its batch was sent."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] | None = None

    def one(self) -> tuple[Any, ...] | None:
        if self.rows is None:
            raise RuntimeError("the statement has not been sent yet")
        return self.rows[0] if self.rows else None

    def all(self) -> list[tuple[Any, ...]]:
        if self.rows is None:
            raise RuntimeError("the statement has not been sent yet")
        return self.rows


class Work:
    """``with Work() as work:`` ... ``work.commit()``. Leaving the block without a commit rolls back."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.connection = connections[using]
        self.postgres = self.connection.vendor == "postgresql"
        self._queue: list[tuple[str, Sequence[Any], Result | None]] = []
        self._hooks: list[Callable[[], None]] = []
        self._savepoint: str | None = None
        self._state = "new"  # new -> open -> committed | rolled back
        self.wrote = False  # a write has reached the database
        self._queued_write = False
        self.round_trips = 0
        self._allocated: set[str] = set()
        self.scoped: dict[str, Any] = {}  # what helpers keep for this work (see ``discard``)
        self._escaping: Any = None  # psycopg.pq.Escaping of the connection, on PostgreSQL
        self._cursor: Any = None  # one cursor for every round trip of the work
        self.journal = journal.JournalDraft()  # what the COMMIT journals (ledger/journal.py)

    def __enter__(self) -> Work:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state in ("new", "open"):
            self.rollback()

    # -- queueing ---------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """Queue a statement that answers rows; they are in the result after the next send."""
        result = Result()
        self._queue.append((sql, list(params), result))
        return result

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a write."""
        self._queue.append((sql, list(params), None))
        self._queued_write = True

    def row(self, table: str, key: Any, values: Any) -> None:
        """Journal the image of a row this work writes: ``values`` a mapping of columns or a row
        object with them as attributes (ledger/journal.py names the columns of each table)."""
        if not isinstance(values, dict):
            values = journal.row_values(values, table)
        journal.journal_row(self.journal, table, key, values)

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the transaction has committed (never after a rollback)."""
        self._hooks.append(hook)

    def discard(self) -> None:
        """Forget every statement queued and not sent, and the after-commit hooks and state that
        went with them (a refusal decided before any write: no cache may learn of rows changed
        in memory only)."""
        self._queue.clear()
        self._queued_write = False
        self._hooks.clear()
        self.scoped.clear()
        self.journal.forget_rows()

    # -- sending ----------------------------------------------------------------------------
    def send(self) -> None:
        """Send every queued statement in one round trip (the first one opens the transaction)."""
        self._require_usable()
        statements = self._take()
        if self._state == "new":
            statements.insert(0, (self._begin_sql(), [], None))
            self._state = "open"
        if statements:
            self._run(statements)

    def commit(self) -> None:
        """Send what is queued, the journal record of the work and the COMMIT together, then run
        the after-commit hooks."""
        self._require_usable()
        if self.journal.pending():
            self._queue.append((*journal.insert_statement(self.journal, postgres=self.postgres, time=self.time), None))
        statements = self._take()
        if self._state == "new":
            if not statements:  # nothing was ever asked of the database
                self._state = "committed"
                self._run_hooks()
                return
            statements.insert(0, (self._begin_sql(), [], None))
            self._state = "open"
        statements.append((self._commit_sql(), [], None))
        try:
            self._run(statements)
        except BaseException:
            self.rollback()
            raise
        self._state = "committed"
        self._close_cursor()
        self._run_hooks()

    def rollback(self) -> None:
        self._close_cursor()
        self._queue.clear()
        self._hooks.clear()
        if self._state != "open":
            self._state = "rolled back"
            return
        self._state = "rolled back"
        sql = (
            [f"ROLLBACK TO SAVEPOINT {self._savepoint}", f"RELEASE SAVEPOINT {self._savepoint}"]
            if self._savepoint
            else ["ROLLBACK"]
        )
        if not self._savepoint and self.postgres and self._pg_idle():
            return  # a failed COMMIT has already ended the transaction
        try:
            with self.connection.cursor() as cursor:
                for each in sql:
                    cursor.execute(each)
        except Exception:
            # The connection is broken: the server rolls the transaction back when it goes, and
            # Django replaces a connection that had errors.
            log.warning("rollback failed; the connection is closed", exc_info=True)
            self.connection.close()

    # -- internals --------------------------------------------------------------------------
    def _take(self) -> list[tuple[str, Sequence[Any], Result | None]]:
        statements, self._queue = self._queue, []
        if self._queued_write:
            self.wrote, self._queued_write = True, False
        return statements

    def _require_usable(self) -> None:
        if self._state not in ("new", "open"):
            raise RuntimeError(f"this work has {self._state}")

    def _begin_sql(self) -> str:
        if self.connection.in_atomic_block:
            self._savepoint = f"balance_work_{next(_savepoint_names)}"
            return f"SAVEPOINT {self._savepoint}"
        return "BEGIN" if self.postgres else "BEGIN IMMEDIATE"

    def _commit_sql(self) -> str:
        return f"RELEASE SAVEPOINT {self._savepoint}" if self._savepoint else "COMMIT"

    def _run(self, statements: list[tuple[str, Sequence[Any], Result | None]]) -> None:
        statements = self._bounded(statements)
        self.round_trips += 1
        try:
            if self._cursor is None:
                self._cursor = self.connection.cursor()
            cursor = self._cursor
            if self.postgres:
                self._run_postgres(cursor, statements)
            else:
                for sql, params, result in statements:
                    cursor.execute(sql, params)
                    if result is not None:
                        result.rows = cursor.fetchall()
        except OperationalError as exc:
            if _is_timeout(exc):
                raise deadline_exceeded("while the database was waiting") from exc
            raise

    def _run_postgres(self, cursor: Any, statements: list[tuple[str, Sequence[Any], Result | None]]) -> None:
        """The batch as one query: each statement EXECUTEd by name (prepared in this batch the
        first time the session meets it), or as text when prepared statements are off."""
        if not settings.DB_PREPARED_STATEMENTS:
            texts = [self._rendered(sql, params) for sql, params, _ in statements]
            owners = [result for _, _, result in statements]
            batch = None
        else:  # the cursor's connection is open: the registry is that session's
            batch = prepared.PreparedBatch(prepared.session_statements(self.connection))
            for sql, params, result in statements:
                if prepared.preparable(sql):
                    batch.statement(sql, params, [self._literal(param) for param in params], result)
                else:
                    batch.text(self._rendered(sql, params), result)
            texts, owners = batch.texts, batch.owners
        try:
            cursor.execute("; ".join(texts))
            # Every result is in once execute returns (psycopg raises there for any statement that
            # failed), so they are read off psycopg's own cursor, past Django's error wrapping.
            results = cursor.cursor
            for position, result in enumerate(owners):
                if position:
                    results.nextset()
                if result is not None:
                    result.rows = results.fetchall()
        except BaseException:
            if batch is not None:
                batch.failed()
            raise
        if batch is not None:
            batch.sent()

    def _bounded(
        self, statements: list[tuple[str, Sequence[Any], Result | None]]
    ) -> list[tuple[str, Sequence[Any], Result | None]]:
        """The batch with the call's time left as its statement and lock timeouts (a call with no
        budget is sent as it is); none is sent once no time is left, so no COMMIT lands late."""
        left = time_left()
        if left is not None and left <= MIN_TIME_FOR_ROUND_TRIP_SECONDS:
            raise deadline_exceeded("before the database was asked")
        milliseconds = None if left is None else max(int(left * 1000), 1)
        opens = bool(statements) and statements[0][0] in ("BEGIN", "BEGIN IMMEDIATE")
        if not self.postgres:
            if not opens:
                return statements
            # How long BEGIN IMMEDIATE waits for another writer (the connection keeps it: a call
            # with no budget sets the default back).
            wait = milliseconds if milliseconds is not None else SQLITE_BUSY_TIMEOUT_MS
            return [(f"PRAGMA busy_timeout = {wait}", [], None), *statements]
        if milliseconds is None:
            return statements
        # SET LOCAL holds until the transaction ends; it comes after the BEGIN or SAVEPOINT.
        limits: list[tuple[str, Sequence[Any], Result | None]] = [
            (f"SET LOCAL statement_timeout = {milliseconds}", [], None),
            (f"SET LOCAL lock_timeout = {milliseconds}", [], None),
        ]
        at = 1 if opens or (statements and statements[0][0].startswith("SAVEPOINT")) else 0
        return statements[:at] + limits + statements[at:]

    def _rendered(self, sql: str, params: Sequence[Any]) -> str:
        """``sql`` with its parameters as SQL literals (``%s`` each, ``%%`` a percent sign), as
        psycopg's client-side binding would send it. Done here because psycopg parses and adapts a
        batch this long in Python on every call (a third of the sidecar's CPU, measured); strings
        go through libpq's own escaping (PQescapeLiteral), everything else is a number or a keyword."""
        return sql % tuple(self._literal(param) for param in params)

    def _literal(self, value: Any) -> str:
        kind = type(value)  # the common cases first, by exact type (a bool is no int here)
        if kind is str:
            return self._text_literal(value)
        if kind is int:
            return str(value)
        if value is None:
            return "NULL"
        if kind is bool:
            return "true" if value else "false"
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime in a query")
            return f"'{value.isoformat()}'::timestamptz"
        if isinstance(value, int):  # an IntEnum or another int subclass
            return str(int(value))
        if isinstance(value, str):
            return self._text_literal(value)
        raise TypeError(f"no SQL literal for {type(value).__name__}")

    def _text_literal(self, value: str) -> str:
        if "\x00" in value:
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        if self._escaping is None:
            from psycopg import pq

            self.connection.ensure_connection()
            self._escaping = pq.Escaping(self.connection.connection.pgconn)
        literal: bytes = self._escaping.escape_literal(value.encode())
        return literal.decode()

    def _close_cursor(self) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # a broken connection: it is replaced after the call
                log.debug("closing the work's cursor failed", exc_info=True)

    def _pg_idle(self) -> bool:
        raw = self.connection.connection
        return raw is None or raw.info.transaction_status == 0  # psycopg.pq.TransactionStatus.IDLE

    def _run_hooks(self) -> None:
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            if self._savepoint:
                transaction.on_commit(hook, using=self.connection.alias)
            else:
                try:
                    hook()
                except Exception:
                    log.exception("an after-commit hook failed")

    # -- dialect ----------------------------------------------------------------------------
    def lock(self, clause: str = "FOR UPDATE") -> str:
        """The row-lock clause on PostgreSQL; nothing on SQLite (its write lock covers the database)."""
        return f" {clause}" if self.postgres else ""

    def next_ids(self, table: str, count: int = 1) -> Result:
        """Queue the allocation of ``count`` new primary keys of ``table``: the ids must be known
        before the rows are written, since the checksums and the answer name them.
        Read them with ``ids(result)``. One allocation per table and work (on SQLite two would
        overlap: the ids are only taken when the rows are written)."""
        if table in self._allocated:
            raise RuntimeError(f"ids of {table} were already allocated in this work")
        self._allocated.add(table)
        if self.postgres:
            return self.query(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [count]
            )
        # SQLite, under its write lock: past both the highest id and the AUTOINCREMENT counter.
        return self.query(
            f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0)) + 1, %s",
            [count],
        )

    def ids(self, result: Result) -> list[int]:
        rows = result.all()
        if self.postgres:
            return [int(row[0]) for row in rows]
        first, count = rows[0]
        return list(range(int(first), int(first) + int(count)))

    def time(self, moment: datetime) -> Any:
        """A datetime as this database takes it as a parameter."""
        return self.connection.ops.adapt_datetimefield_value(moment)


@overload
def as_datetime(value: None) -> None: ...
@overload
def as_datetime(value: datetime | str) -> datetime: ...
def as_datetime(value: Any) -> datetime | None:
    """A datetime column as read: aware on PostgreSQL, naive UTC (or its text) on SQLite."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def as_json(value: Any) -> Any:
    """A JSON column as read (text on both databases through Django's connection)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def as_bool(value: Any) -> bool:
    return bool(value)
