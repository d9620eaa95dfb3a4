"""The PostgreSQL hot path: a hot call's locks, checks and writes in one PL/pgSQL function.

Through the ORM a buy-in was 19 statements and 7-9 ms of Python per call; this way it is BEGIN, the
function, one closing query and COMMIT. The functions (``<app>/sql/*.sql``, installed by
migrations) keep the rules, the lock order and the refusals of the ORM services they stand for,
which still serve SQLite; the whole test suite runs on both in CI, and
tests/perf/test_hot_path_equivalence.py compares the two paths call by call on PostgreSQL.

Two things stay in Python:
- the checksum chain: the HMAC key never enters the database. A function that posts answers its
  entries without checksums; ``call`` computes them and queues their ``balance_seal``, which
  ``ledger.idempotency`` sends in the same round trip as the idempotency record, the last write of
  the call. A deferred trigger (the chain guard) refuses a COMMIT that moved an account's balance,
  sequence or chain head without the entry to match, so a forgotten seal cannot land;
- the answer: the service builds it from the rows the function returns, with the same result
  functions as the ORM path.

A refusal is raised in SQL as SQLSTATE BL001 (code in HINT, message, details as JSON in DETAIL) and
comes out of ``call`` as the same ``ApplicationError`` the ORM path raises.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models

from accounts.cache import balance_cache_refresh_on_commit
from accounts.models import Account
from balance_project.errors import ApplicationError
from ledger import chain
from ledger.models import Entry, Transaction

REFUSAL_SQLSTATE = "BL001"


def enabled() -> bool:
    """True on PostgreSQL unless settings.PG_HOT_PATH is off (then the ORM path serves it too)."""
    return connection.vendor == "postgresql" and settings.PG_HOT_PATH


def call(sql: str, params: list[Any]) -> dict[str, Any]:
    """Run ``sql`` (a SELECT of one hot-path function) in the caller's database transaction.

    Computes the checksums of the entries it posted and queues their seal, feeds the balance cache
    (after commit) with the accounts it answers, and returns its JSON answer. Raises
    ``ApplicationError`` for a refusal."""
    with connection.cursor() as cursor:
        try:
            cursor.execute(sql, params)
        except DatabaseError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            raise refusal from None
        answer = _json(cursor.fetchone()[0])
    if answer.get("entries"):
        answer["entries"] = _sealed(answer["entries"])
        deferred_add("SELECT balance_seal(%s::jsonb)", [json.dumps(answer["entries"])])
    balance_cache_refresh_on_commit(*(from_row(Account, row) for row in answer.get("accounts", {}).values()))
    return answer


def deferred_add(sql: str, params: list[Any]) -> None:
    """Queue a write for the next ``deferred_flush`` of this connection's transaction."""
    _deferred().append((sql, params))


def deferred_flush(sql: str | None = None, params: list[Any] | None = None) -> None:
    """Run the queued writes and then ``sql``, in one round trip (``idempotent`` calls it with the
    idempotency record, the last write of every mutating call). PostgreSQL with psycopg's
    client-side binding (Django's default) takes several statements in one query; elsewhere
    nothing is ever queued."""
    statements = _deferred()
    if sql is not None:
        statements.append((sql, params or []))
    if not statements:
        return
    with connection.cursor() as cursor:
        if connection.settings_dict["OPTIONS"].get("server_side_binding"):
            for each, each_params in statements:  # server-side binding takes one statement a query
                cursor.execute(each, each_params)
        else:
            cursor.execute("; ".join(each for each, _ in statements),
                           [param for _, each_params in statements for param in each_params])
    statements.clear()


def deferred_discard() -> None:
    """Forget the queued writes of a transaction that rolled back."""
    _deferred().clear()


def _deferred() -> list[tuple[str, list[Any]]]:
    """This connection's queue. Its entries are sealed here but written at the flush: if a caller
    forgot the flush, the chain guard (ledger/sql) would refuse the COMMIT."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    queue = getattr(wrapper, "balance_deferred_writes", None)
    if queue is None:
        queue = wrapper.balance_deferred_writes = []
    return queue


def from_row(model: type[models.Model], row: dict[str, Any]) -> models.Model:
    """A model instance from a row as PostgreSQL's ``to_jsonb`` writes it (column names, ISO times)."""
    values = {}
    for field in model._meta.concrete_fields:
        value = row[field.column]
        if value is not None and isinstance(field, models.DateTimeField) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        values[field.attname] = value
    instance = model(**values)
    instance._state.adding = False
    return instance


def posted_transaction(answer: dict[str, Any]) -> Transaction | None:
    """The answer's transaction with its sealed entries (``posted_entries``), None if nothing posted."""
    if "transaction" not in answer:
        return None
    tx = from_row(Transaction, answer["transaction"])
    tx.posted_entries = [from_row(Entry, entry) for entry in answer["entries"]]
    return tx


def account(answer: dict[str, Any], account_id: int) -> Account:
    return from_row(Account, answer["accounts"][str(account_id)])


def _sealed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry with its chain checksum, computed from the previous one of its account."""
    sealed = []
    for entry in entries:
        fields = {key: entry[key] for key in ("account_id", "seq", "transaction_id", "amount", "currency",
                                              "balance_after")}
        created_at = datetime.fromisoformat(entry["created_at"])
        checksum = chain.entry_checksum(prev_checksum=entry["prev_checksum"], created_at=created_at, **fields)
        sealed.append({**fields, "created_at": entry["created_at"], "checksum": checksum, "id": None})
    return sealed


def _refusal(exc: DatabaseError) -> ApplicationError | None:
    diag = getattr(exc.__cause__, "diag", None)
    if diag is None or diag.sqlstate != REFUSAL_SQLSTATE:
        return None
    return ApplicationError(diag.message_hint, diag.message_primary, json.loads(diag.message_detail or "{}"))


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, (str, bytes)) else value
