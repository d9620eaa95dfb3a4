"""Least-privilege database roles (issue #9, item 4; balance_project/db_roles.py, docs/db-roles.md).

On PostgreSQL a fresh database of its own (``<configured database>_roles``) gets an owner and a
runtime role; ``manage.py db_roles migrate`` migrates it as the owner and grants; then the service's
real calls run as the runtime role (tests/ops/runtime_role_calls.py), and every statement that
would let it rewrite history is refused by PostgreSQL with insufficient_privilege. The grant map
itself is checked on every database: each table of the models is classified, the books are
append-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import psycopg
import pytest
import yaml
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors

from accounts.management.commands.db_roles import role_of, url_with_role
from balance_project import db_roles
from balance_project.db_roles import APPEND_ONLY, TABLE_GRANTS
from tests.ops.test_docker import interpolate_defaults

BASE_DIR = Path(__file__).resolve().parents[2]
APPEND_ONLY_TABLES = sorted(name for name, grant in TABLE_GRANTS.items() if grant == APPEND_ONLY)
STATE_TABLES = sorted(name for name, grant in TABLE_GRANTS.items() if grant.update_columns)
BOOKS = ["ledger_transaction", "ledger_entry", "tables_hand"]
BOOKS += ["ledger_journalrecord", "ledger_journalseal", "ledger_journalposition", "reservations_reservationevent"]


def model_columns() -> dict[str, dict[str, str]]:
    """{table: {column: pk column}} of every model, from Django's own metadata."""
    found = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        found[meta.db_table] = {f.column: meta.pk.column for f in meta.local_concrete_fields}
    return found


# --- the map (every database) ---------------------------------------------------------------------
def test_every_table_of_the_models_is_classified_and_nothing_else():
    # Many-to-many tables included; migrate's own record is no registered model.
    tables = set(model_columns()) | {"django_migrations"}
    assert db_roles.unclassified(tables) == []
    assert sorted(set(TABLE_GRANTS) - tables) == [], "the map names tables no model has"


def test_the_books_and_audit_trails_are_append_only():
    for table in [*BOOKS, "accounts_protectionevent", "accounts_selfexclusion", "django_admin_log"]:
        assert TABLE_GRANTS[table] == APPEND_ONLY, table
    assert not any("TRUNCATE" in grant.privileges for grant in TABLE_GRANTS.values())


def test_updates_name_real_columns_and_never_who_owns_an_account():
    columns = model_columns()
    for table in STATE_TABLES:
        assert set(TABLE_GRANTS[table].update_columns) <= set(columns[table]), table
    account = set(TABLE_GRANTS["accounts_account"].update_columns)
    assert account.isdisjoint({"id", "owner_ref", "kind", "currency", "system_code", "shard", "allow_negative"})


def test_compose_runs_the_service_as_the_runtime_role_and_migrates_as_the_owner():
    compose = yaml.safe_load(interpolate_defaults((BASE_DIR / "docker" / "compose.yaml").read_text()))
    services = compose["services"]
    migrate = services["migrate"]
    assert "db_roles migrate" in " ".join(migrate["command"])
    assert "db_roles create" in " ".join(migrate["command"])
    owner = dj_database_url.parse(migrate["environment"]["MIGRATION_DATABASE_URL"])["USER"]
    for name in ("http", "admin", "grpc", "worker", "beat"):
        env = services[name]["environment"]
        assert "MIGRATION_DATABASE_URL" not in env and "DB_ADMIN_URL" not in env, name
        runtime = dj_database_url.parse(env["DATABASE_URL"])["USER"]
        assert runtime not in (owner, compose["services"]["db"]["environment"]["POSTGRES_USER"]), name


def test_the_command_names_what_is_missing(settings):
    settings.DATABASE_URL = "postgres://balance_app:pw@db.example:5432/balance"
    settings.MIGRATION_DATABASE_URL = ""
    with pytest.raises(CommandError, match="MIGRATION_DATABASE_URL names the owner"):
        call_command("db_roles", "grant")
    settings.MIGRATION_DATABASE_URL = "postgres://balance_owner:pw@db.example:5432/other"
    with pytest.raises(CommandError, match="same database"):
        call_command("db_roles", "migrate")
    settings.DB_ADMIN_URL = ""
    with pytest.raises(CommandError, match="DB_ADMIN_URL names a role that may create roles"):
        call_command("db_roles", "create")


def test_local_urls_keep_host_database_and_options():
    base = "postgres://postgres@127.0.0.1:5432/balance?sslmode=require"
    url = url_with_role(base, "balance_owner", "p-w_1")
    assert url == "postgres://balance_owner:p-w_1@127.0.0.1:5432/balance?sslmode=require"
    assert role_of(url) == ("balance_owner", "p-w_1", "balance")


# --- PostgreSQL: the roles themselves ---------------------------------------------------------------
@dataclass
class Roles:
    admin_url: str
    owner_url: str
    runtime_url: str
    owner: str
    runtime: str
    database: str
    env: dict[str, str]


def _url(base: str, *, user: str, password: str, database: str) -> str:
    parsed = dj_database_url.parse(base)
    return f"postgres://{user}:{password}@{parsed['HOST'] or '127.0.0.1'}:{parsed['PORT'] or 5432}/{database}"


def _admin(url: str) -> psycopg.Connection:
    parsed = dj_database_url.parse(url)
    return psycopg.connect(
        dbname=parsed["NAME"],
        user=parsed["USER"],
        password=parsed["PASSWORD"] or None,
        host=parsed["HOST"] or None,
        port=parsed["PORT"] or None,
        autocommit=True,
    )


def _drop(admin: psycopg.Connection, roles: Roles) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{roles.database}" WITH (FORCE)')
    for role in (roles.runtime, roles.owner):
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture(scope="module")
def roles(tmp_path_factory) -> Iterator[Roles]:
    """A fresh database migrated by its owner role and granted to its runtime role, with the
    service's calls already run in it as the runtime role (so every table has rows)."""
    if not connection.settings_dict["ENGINE"].startswith("django.db.backends.postgresql"):
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    base = os.environ["DATABASE_URL"]
    parsed = dj_database_url.parse(base)
    # Per pytest-xdist worker: two workers each run this module's fixture (cluster-wide roles).
    database = f"{parsed['NAME']}_roles{os.environ.get('PYTEST_XDIST_WORKER', '')}"[:55]
    password = uuid.uuid4().hex
    made = Roles(
        admin_url=_url(base, user=parsed["USER"], password=parsed["PASSWORD"] or "", database=database),
        owner_url=_url(base, user=f"{database}_owner", password=password, database=database),
        runtime_url=_url(base, user=f"{database}_app", password=password[::-1], database=database),
        owner=f"{database}_owner",
        runtime=f"{database}_app",
        database=database,
        env={},
    )
    with _admin(base) as admin:
        if not admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            pytest.skip("the configured role cannot create databases and roles")
        _drop(admin, made)
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            with _admin(made.admin_url) as on_new, on_new.cursor() as cursor:
                db_roles.roles_create(
                    cursor, owner=made.owner, owner_password=password, runtime=made.runtime, runtime_password=password
                )
            env = {k: v for k, v in os.environ.items() if k not in ("MIGRATION_DATABASE_URL", "DB_ADMIN_URL")}
            # A var directory of its own: the external seals there belong to this database alone.
            var_dir = str(tmp_path_factory.mktemp("roles-var"))
            made.env = env | {
                "DATABASE_URL": made.runtime_url,
                "CELERY_TASK_ALWAYS_EAGER": "1",
                "BALANCE_VAR_DIR": var_dir,
            }
            made.env.pop("LEDGER_SEAL_SINK", None)
            migrated = subprocess.run(
                [sys.executable, "manage.py", "db_roles", "migrate"],
                cwd=BASE_DIR,
                env=made.env | {"MIGRATION_DATABASE_URL": made.owner_url},
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
            assert f"granted {made.runtime}" in migrated.stdout
            yield made
        finally:
            _drop(admin, made)


@pytest.fixture(scope="module")
def service_run(roles: Roles) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.ops.runtime_role_calls"],
        cwd=BASE_DIR,
        env=roles.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def as_runtime(roles: Roles, service_run: dict) -> Iterator[psycopg.Connection]:
    with psycopg.connect(roles.runtime_url) as conn:
        yield conn


@pytest.fixture
def as_owner(roles: Roles) -> Iterator[psycopg.Connection]:
    with psycopg.connect(roles.owner_url) as conn:
        yield conn
        conn.rollback()


def refused(conn: psycopg.Connection, statement: str) -> str:
    """The statement is refused for want of a privilege (42501), not by a trigger or a constraint."""
    try:
        with pytest.raises(errors.InsufficientPrivilege) as caught:
            conn.execute(statement)
    finally:
        conn.rollback()
    return str(caught.value)


@pytest.mark.postgres
def test_the_runtime_role_runs_the_whole_service(roles, service_run):
    assert service_run["role"] == roles.runtime
    assert len(service_run["steps"]) >= 9, service_run
    assert {"seal_journal", "verify_ledger"} <= set(service_run["steps"])
    assert "reservations.expire_overdue_reservations" in service_run["jobs"]


@pytest.mark.postgres
def test_the_runtime_role_has_exactly_the_map_and_regranting_changes_nothing(roles, as_owner):
    with as_owner.cursor() as cursor:
        assert db_roles.privilege_problems(cursor, runtime=roles.runtime) == []
        db_roles.grant_runtime(cursor, runtime=roles.runtime)
        assert db_roles.privilege_problems(cursor, runtime=roles.runtime) == []


def _row_statements() -> list[str]:
    columns = model_columns()
    statements = []
    for table in APPEND_ONLY_TABLES:
        pk = next(iter(columns[table].values()))
        statements += [f"UPDATE {table} SET {pk} = {pk}", f"DELETE FROM {table}"]
    for table in STATE_TABLES:
        grant = TABLE_GRANTS[table]
        fixed = sorted(set(columns[table]) - set(grant.update_columns))
        statements += [f"UPDATE {table} SET {column} = {column}" for column in fixed]
        if "DELETE" not in grant.privileges:
            statements.append(f"DELETE FROM {table}")
    return statements


@pytest.mark.postgres
@pytest.mark.parametrize("statement", _row_statements())
def test_rewriting_a_row_of_the_books_is_refused(as_runtime, statement):
    refused(as_runtime, statement)


@pytest.mark.postgres
def test_truncate_is_refused_on_every_table(as_runtime):
    for table in TABLE_GRANTS:
        refused(as_runtime, f"TRUNCATE {table}")
    refused(as_runtime, "TRUNCATE accounts_account, ledger_transaction, ledger_entry, ledger_journalrecord CASCADE")


SCHEMA_STATEMENTS = [
    "ALTER TABLE ledger_entry ADD COLUMN forged integer",
    "ALTER TABLE ledger_entry DISABLE TRIGGER ALL",
    "ALTER TABLE accounts_account DROP CONSTRAINT account_available_not_negative",
    "ALTER TABLE accounts_account DISABLE ROW LEVEL SECURITY",
    "DROP TABLE ledger_entry",
    "DROP TRIGGER ledger_entry_append_only ON ledger_entry",
    "DROP FUNCTION ledger_entry_refuse_change()",
    "CREATE TABLE public.forged (x integer)",
    "CREATE TEMPORARY TABLE ledger_entry (x integer)",
    "CREATE SCHEMA forged",
    "CREATE FUNCTION public.forged() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
    "CREATE TRIGGER forged BEFORE INSERT ON ledger_entry FOR EACH ROW EXECUTE FUNCTION ledger_entry_refuse_change()",
    "SET session_replication_role = replica",
    "SELECT setval(pg_get_serial_sequence('ledger_entry', 'id'), 1)",
    "LOCK TABLE ledger_entry IN ACCESS EXCLUSIVE MODE",
]


@pytest.mark.postgres
@pytest.mark.parametrize("statement", SCHEMA_STATEMENTS)
def test_changing_the_schema_or_its_guards_is_refused(as_runtime, statement):
    refused(as_runtime, statement)


@pytest.mark.postgres
def test_each_trigger_cannot_be_disabled_nor_its_function_replaced(roles, as_runtime):
    triggers = as_runtime.execute(
        "SELECT c.relname, t.tgname, p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2"
    ).fetchall()
    as_runtime.rollback()
    names = {name for _table, name, _function, _body in triggers}
    assert {"ledger_entry_append_only", "ledger_journalrecord_append_only", "accounts_account_chain_guard"} <= names
    for table, trigger, function, body in triggers:
        refused(as_runtime, f'ALTER TABLE {table} DISABLE TRIGGER "{trigger}"')
        refused(as_runtime, body)  # pg_get_functiondef: CREATE OR REPLACE FUNCTION, the same body
        refused(as_runtime, f"ALTER FUNCTION {function} OWNER TO {roles.runtime}")


@pytest.mark.postgres
def test_the_runtime_role_cannot_raise_itself(roles, as_runtime):
    for statement in (
        f"ALTER ROLE {roles.runtime} SUPERUSER",
        f"ALTER ROLE {roles.runtime} BYPASSRLS",
        f"GRANT {roles.owner} TO {roles.runtime}",
        f"ALTER TABLE ledger_entry OWNER TO {roles.runtime}",
        f"ALTER DATABASE {roles.database} OWNER TO {roles.runtime}",
    ):
        refused(as_runtime, statement)


@pytest.mark.postgres
def test_the_owner_can_still_disable_the_guards(as_owner, service_run):
    """Said plainly (docs/db-roles.md): the owner owns the tables, so it can switch a trigger off and
    rewrite an entry. That is what the journal and its external seals are for."""
    as_owner.execute("ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_append_only")
    changed = as_owner.execute(
        "UPDATE ledger_entry SET checksum = checksum WHERE id = (SELECT MIN(id) FROM ledger_entry)"
    )
    assert changed.rowcount == 1


@pytest.mark.postgres
def test_a_table_the_map_does_not_classify_refuses_the_grant(roles, as_owner):
    as_owner.execute("CREATE TABLE ledger_unclassified (id bigint)")
    with as_owner.cursor() as cursor, pytest.raises(db_roles.RolesRefused, match="ledger_unclassified"):
        db_roles.grant_runtime(cursor, runtime=roles.runtime)


@pytest.mark.postgres
def test_a_runtime_role_that_could_act_as_the_owner_is_refused(roles, as_owner):
    with _admin(roles.admin_url) as admin:
        admin.autocommit = False
        with admin.cursor() as cursor:
            assert db_roles.role_problems(cursor, runtime=roles.runtime) == []
        admin.execute(f'GRANT "{roles.owner}" TO "{roles.runtime}"')
        admin.execute(f'GRANT pg_execute_server_program TO "{roles.runtime}"')
        with admin.cursor() as cursor:
            problems = db_roles.role_problems(cursor, runtime=roles.runtime)
            assert any(f"member of {roles.owner}" in problem for problem in problems), problems
            assert any("member of pg_execute_server_program" in problem for problem in problems), problems
        admin.rollback()
    with as_owner.cursor() as cursor, pytest.raises(db_roles.RolesRefused, match="use two roles"):
        db_roles.grant_runtime(cursor, runtime=roles.owner)
