"""Server-side prepared statements for ``Work``'s batches on PostgreSQL.

A batch is one simple-protocol query (ledger/work.py), so PostgreSQL parsed and planned every
statement of every call: 46% of its CPU in the gRPC full mix, measured with perf (bench/README.md).
Instead, each statement's text is prepared once per database session (``PREPARE name(types) AS``,
sent in the batch that first needs it) and every later batch says ``EXECUTE name(literals)``: the
same statements, in the same order and round trips, without their parse and plan.

The registry of what a session has prepared lives on Django's connection and starts again whenever
its underlying connection is new. PREPARE is not transactional: a batch that failed may have
prepared some of its statements, so the next batch on that connection first runs ``DEALLOCATE
ALL`` and prepares afresh.

Named prepared statements live in a server session: behind a pooler in transaction mode (PgBouncer
and the like), set ``DB_PREPARED_STATEMENTS=0``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

# Statements PREPARE takes; anything else (BEGIN, SET LOCAL, COMMIT, SAVEPOINT) is sent as text.
_PREPARABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_PLACEHOLDER = re.compile(r"%[s%]")


class SessionStatements:
    """What one PostgreSQL session has prepared: statement key -> name."""

    def __init__(self, session: Any) -> None:
        self.session = session  # the psycopg connection these statements were prepared on
        self.names: dict[tuple[str, tuple[str, ...]], str] = {}
        self.unsure = False  # a batch failed: what it prepared is unknown


def session_statements(connection: Any) -> SessionStatements:
    """The registry of Django ``connection``'s current session (a new one after a reconnect)."""
    registry: SessionStatements | None = getattr(connection, "_balance_prepared", None)
    if registry is None or registry.session is not connection.connection:
        registry = SessionStatements(connection.connection)
        connection._balance_prepared = registry
    return registry


def parameter_type(value: Any) -> str:
    """The declared type of a parameter, from its Python value. Strings and NULL are ``unknown``,
    so PostgreSQL takes the column's own type (varchar, jsonb) as an unquoted literal would."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, datetime):
        return "timestamptz"
    return "unknown"


# The types of the common parameters by their exact class (a dictionary lookup instead of a chain of
# isinstance checks for each of a call's hundred parameters); anything else goes to parameter_type.
_EXACT_TYPES = {bool: "boolean", int: "bigint", datetime: "timestamptz", str: "unknown", type(None): "unknown"}


def parameter_types(params: Sequence[Any]) -> tuple[str, ...]:
    exact = _EXACT_TYPES.get
    return tuple(exact(type(value)) or parameter_type(value) for value in params)


def with_positions(sql: str) -> str:
    """``%s`` placeholders as ``$1``, ``$2``...; ``%%`` as ``%``."""
    positions = iter(range(1, sql.count("%s") + 1))
    return _PLACEHOLDER.sub(lambda match: "%" if match.group() == "%%" else f"${next(positions)}", sql)


def preparable(sql: str) -> bool:
    return sql.lstrip()[:6].upper().startswith(_PREPARABLE)


class PreparedBatch:
    """One batch's texts, in order: ``PREPARE`` the first time a session meets a statement, then
    ``EXECUTE`` it. ``owners[i]`` is what reads the result set of text ``i`` (None: nothing does,
    as for an added PREPARE)."""

    def __init__(self, registry: SessionStatements) -> None:
        self.registry = registry
        self.texts: list[str] = []
        self.owners: list[Any] = []
        self._new: dict[tuple[str, tuple[str, ...]], str] = {}
        if registry.unsure:
            self.text("DEALLOCATE ALL")
            registry.names.clear()
            registry.unsure = False

    def text(self, text: str, owner: Any = None) -> None:
        """A statement sent as it is."""
        self.texts.append(text)
        self.owners.append(owner)

    def statement(self, sql: str, params: Sequence[Any], literals: Sequence[str], owner: Any = None) -> None:
        """A preparable statement (``preparable(sql)``) with its parameters rendered as ``literals``."""
        types = parameter_types(params)
        key = (sql, types)
        name = self.registry.names.get(key) or self._new.get(key)
        if name is None:
            name = f"balance_{len(self.registry.names) + len(self._new) + 1}"
            self._new[key] = name
            declared = f"({', '.join(types)})" if types else ""
            self.text(f"PREPARE {name}{declared} AS {with_positions(sql)}")
        self.text(f"EXECUTE {name}({', '.join(literals)})" if literals else f"EXECUTE {name}", owner)

    def sent(self) -> None:
        """The batch ran whole: its statements are prepared on the session."""
        self.registry.names.update(self._new)
        self._new = {}

    def failed(self) -> None:
        """The batch stopped part way: the next one deallocates everything first."""
        self.registry.unsure = True
