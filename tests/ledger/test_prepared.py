"""Prepared statements on the lean data path (ledger/prepared.py): each statement is prepared once
per database session and then executed without a new plan; a failed batch, a new connection or
the switch turned off never leave a call facing a statement its session does not hold."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from accounts.services import account_deposit
from ledger.prepared import with_positions
from ledger.work import Work
from tests.tables.helpers import new_key, new_player

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# A row of a table with a unique key; the batches that write it fail before their COMMIT.
INSERT_RECORD = (
    "INSERT INTO ledger_journalrecord (txid, scope, key, operation, request_hash, response, is_error, rows, "
    "created_at, mac) VALUES (0, %s, %s, 'x', 'h', '{}', false, '{}', CURRENT_TIMESTAMP, 'm')"
)


def plans_of(fragment: str) -> tuple[int, int]:
    """(generic, custom) plans of this session's prepared statement whose text holds ``fragment``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return rows[0]


def answer(sql: str, params) -> tuple:
    with Work() as work:
        found = work.query(sql, params)
        work.commit()
    return found.one()


def test_a_statement_is_prepared_once_and_then_runs_without_being_planned_again():
    for n in range(12):
        assert answer("SELECT %s::bigint * 2 AS doubled_for_the_plan_test", [n]) == (2 * n,)
    generic, custom = plans_of("doubled_for_the_plan_test")
    # PostgreSQL plans the first five executions for their values, then keeps one generic plan.
    assert custom <= 5 and generic >= 6


def test_after_a_batch_that_failed_part_way_the_next_batch_prepares_afresh():
    """The failed batch prepared its first statement (PREPARE is not rolled back) before its
    second failed: the next batch, which would name its own new statement alike, still runs."""
    with Work() as work:
        work.query("SELECT %s::bigint + 1 AS prepared_before_the_failure", [1])
        work.execute(INSERT_RECORD, ["prepared-test", "same"])
        work.execute(INSERT_RECORD, ["prepared-test", "same"])
        with pytest.raises(IntegrityError):
            work.commit()
    assert answer("SELECT %s::bigint + 2 AS prepared_after_the_failure", [1]) == (3,)
    assert answer("SELECT %s::bigint + 1 AS prepared_before_the_failure", [5]) == (6,)


def test_a_new_connection_prepares_again():
    assert answer("SELECT %s::bigint + 3 AS across_connections", [1]) == (4,)
    connection.close()
    assert answer("SELECT %s::bigint + 3 AS across_connections", [2]) == (5,)


def test_the_same_text_with_other_parameter_types_is_its_own_statement():
    assert answer("SELECT COALESCE(%s, 'none') AS typed_apart", [None]) == ("none",)
    assert answer("SELECT COALESCE(%s, 'none') AS typed_apart", ["given"]) == ("given",)


def test_turned_off_the_statements_are_sent_as_text(settings):
    settings.DB_PREPARED_STATEMENTS = False
    _, wallet = new_player()
    with CaptureQueriesContext(connection) as queries:
        account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=5)
    sent = " ".join(query["sql"] for query in queries.captured_queries)
    assert "EXECUTE" not in sent and "PREPARE" not in sent
    settings.DB_PREPARED_STATEMENTS = True
    with CaptureQueriesContext(connection) as queries:
        account_deposit(client="t", idempotency_key=new_key(), account_id=wallet, amount=5)
    assert "EXECUTE balance_" in " ".join(query["sql"] for query in queries.captured_queries)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT %s, %s", "SELECT $1, $2"),
        ("SELECT id %% %s FROM t WHERE a = %s", "SELECT id % $1 FROM t WHERE a = $2"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholders_become_positions(sql, expected):
    assert with_positions(sql) == expected
