"""Least-privilege database roles on PostgreSQL (issue #9, item 4; docs/db-roles.md).

Two roles share the database:

- the **owner** owns the schema objects (tables, sequences, the triggers' functions) and runs the
  migrations. Owning a table is what lets a role ALTER it, disable its triggers, replace the
  functions they call or TRUNCATE it, without being a superuser; so the service never runs as it.
- the **runtime** role is what the service's processes log in as (``DATABASE_URL``): it may read
  every table and write only what the code writes, as ``TABLE_GRANTS`` below says table by table.
  The books are append-only to it (SELECT and INSERT: no UPDATE, DELETE or TRUNCATE), an account
  row may change only in its money columns (never ``owner_ref``, ``kind`` or ``currency``), and it
  owns nothing, so it cannot ALTER, DISABLE TRIGGER, CREATE OR REPLACE FUNCTION or DROP.

``TABLE_GRANTS`` is the one place that says what the runtime role may do; every table must be in
it (a table it does not classify refuses the grant, tests/ops/test_db_roles.py). The grant is
idempotent: it revokes everything the runtime role holds in the schema and grants the map again in
one transaction, then checks the privileges PostgreSQL reports against the map.

What the owner can still do (it owns the tables: disable the append-only triggers, rewrite rows) is
what the journal and its external seals defend against (ledger/sealing.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

SCHEMA = "public"
# Every table privilege PostgreSQL has: the check compares each with the map.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True)
class Grant:
    """What the runtime role may do with one table: table-wide ``privileges``, plus UPDATE of the
    ``update_columns`` alone (a column grant) when UPDATE is not table-wide."""

    privileges: tuple[str, ...]
    update_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.update_columns and "UPDATE" in self.privileges:
            raise ValueError("UPDATE is either table-wide or of named columns")
        if "TRUNCATE" in self.privileges or not set(self.privileges) <= set(TABLE_PRIVILEGES):
            raise ValueError(f"not a runtime privilege set: {self.privileges}")

    @property
    def inserts(self) -> bool:
        return "INSERT" in self.privileges


READ = Grant(("SELECT",))
APPEND_ONLY = Grant(("SELECT", "INSERT"))
# State of Django and its libraries that is not money (sessions, staff users, lockouts, second
# factors, beat's schedule): the code and the admin add, change and remove rows there.
CHANGE = Grant(("SELECT", "INSERT", "UPDATE", "DELETE"))


def updates(*columns: str, delete: bool = False) -> Grant:
    """Insert rows and update only ``columns`` (and delete rows with ``delete``)."""
    return Grant(("SELECT", "INSERT", "DELETE") if delete else ("SELECT", "INSERT"), update_columns=columns)


TABLE_GRANTS: Mapping[str, Grant] = {
    # The books and every audit trail: written once, never changed. (ledger/services.py,
    # ledger/idempotency.py, ledger/journal.py, ledger/sealing.py, ledger/integrity_runs.py,
    # tables/services.py, reservations/rows.py, accounts/protection_services.py, Django's admin log.)
    "ledger_transaction": APPEND_ONLY,
    "ledger_entry": APPEND_ONLY,
    "ledger_journalrecord": APPEND_ONLY,
    "ledger_journalseal": APPEND_ONLY,
    "ledger_journalposition": APPEND_ONLY,
    "ledger_integrityrun": APPEND_ONLY,
    "tables_hand": APPEND_ONLY,
    "reservations_reservationevent": APPEND_ONLY,
    "accounts_protectionevent": APPEND_ONLY,
    "accounts_selfexclusion": APPEND_ONLY,
    # Who changed what in the admin: a staff user with history is deactivated, not deleted.
    "django_admin_log": APPEND_ONLY,
    # Rows with a state: the columns the services update, nothing else (ledger/services.py
    # accounts_write; reservations/rows.py reservation_update; tables/rows.py, tables/services.py,
    # tables/seating.py; accounts/adjustments.py; accounts/keys.py and its admin).
    "accounts_account": updates("balance", "held", "status", "version", "entry_seq", "chain_head", "updated_at"),
    "reservations_reservation": updates(
        "status",
        "committed_amount",
        "seat_id",
        "transaction_id",
        "ended_at",
        "ended_by",
        "end_reason",
        "updated_at",
    ),
    "tables_table": updates("status", "chips", "closed_at", "updated_at"),
    "tables_seat": updates("status", "left_at"),
    "accounts_adjustmentproposal": updates("status", "decided_by_id", "decided_at", "decision_note", "transaction_id"),
    "accounts_apikey": updates("is_active", "last_used_at"),
    # A removal that came into force deletes the limit (accounts/protection_services.py); its
    # history is in accounts_protectionevent.
    "accounts_playerlimit": updates("value", "pending_value", "pending_effective_at", "updated_at", delete=True),
    # Written by `migrate` alone (as the owner): read at run time.
    "django_migrations": READ,
    "django_content_type": READ,
    "auth_permission": READ,
    # Django's and the libraries' own state.
    "django_session": CHANGE,
    "auth_user": CHANGE,
    "auth_group": CHANGE,
    "auth_group_permissions": CHANGE,
    "auth_user_groups": CHANGE,
    "auth_user_user_permissions": CHANGE,
    "axes_accessattempt": CHANGE,
    "axes_accessattemptexpiration": CHANGE,
    "axes_accessfailurelog": CHANGE,
    "axes_accesslog": CHANGE,
    "otp_totp_totpdevice": CHANGE,
    "django_celery_beat_clockedschedule": CHANGE,
    "django_celery_beat_crontabschedule": CHANGE,
    "django_celery_beat_intervalschedule": CHANGE,
    "django_celery_beat_periodictask": CHANGE,
    "django_celery_beat_periodictasks": CHANGE,
    "django_celery_beat_solarschedule": CHANGE,
}


# Roles whose members bypass the grants (write every table, run programs or touch files as the
# server), the predefined ones and the managed providers' admin roles: never the runtime role's.
POWERFUL_ROLES = (
    "pg_write_all_data",
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
    "rds_superuser",
    "cloudsqlsuperuser",
    "azure_pg_admin",
)


class RolesRefused(Exception):
    """The roles or the schema are not what a least-privilege setup needs; the message says why."""


def unclassified(tables: Iterable[str]) -> list[str]:
    """The tables ``TABLE_GRANTS`` says nothing about: the runtime role would get nothing on them,
    so the grant refuses until the map classifies them."""
    return sorted(set(tables) - set(TABLE_GRANTS))


def expected_privileges(grant: Grant) -> dict[str, bool]:
    return {privilege: privilege in grant.privileges for privilege in TABLE_PRIVILEGES}


# --- on a connection (psycopg cursor) --------------------------------------------------------------
def schema_tables(cursor: Any) -> list[str]:
    """Tables, views and sequences' owners aside: every relation a role could read or write."""
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'f')"
        " ORDER BY relname",
        [SCHEMA],
    )
    return [row[0] for row in cursor.fetchall()]


def _table_sequences(cursor: Any) -> list[tuple[str, str]]:
    """(sequence, table) for each sequence owned by a table's column (serial or identity)."""
    cursor.execute(
        "SELECT s.relname, t.relname FROM pg_class s "
        "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid "
        "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "WHERE s.relkind = 'S' AND s.relnamespace = %s::regnamespace ORDER BY 1",
        [SCHEMA],
    )
    return [(row[0], row[1]) for row in cursor.fetchall()]


def grant_runtime(cursor: Any, *, runtime: str) -> dict[str, Any]:
    """Give the runtime role exactly ``TABLE_GRANTS``, as the owner, in the caller's transaction.

    Refuses (RolesRefused, nothing granted once the caller rolls back) a table the map does not
    classify, a runtime role that is the connected role or could act as an owner, and a result
    whose privileges differ from the map. Returns what it granted."""
    cursor.execute("SELECT current_user, current_database()")
    owner, database = cursor.fetchone()
    if owner == runtime:
        raise RolesRefused(f"the runtime role {runtime} is the role that runs the migrations: use two roles")
    problems = role_problems(cursor, runtime=runtime)
    if problems:
        raise RolesRefused("; ".join(problems))
    tables = schema_tables(cursor)
    missing = unclassified(tables)
    if missing:
        raise RolesRefused(
            "tables not classified in balance_project/db_roles.py TABLE_GRANTS (the runtime role gets "
            f"nothing until they are): {', '.join(missing)}"
        )
    who, schema, db = sql.Identifier(runtime), sql.Identifier(SCHEMA), sql.Identifier(database)
    run = [
        # Start from nothing, so a privilege dropped from the map goes too (a table's REVOKE also
        # revokes its column privileges).
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, who),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, who),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, who),
        # PostgreSQL before 15 lets every role create in public; temporary tables shadow the
        # schema's tables in the session that makes them. Neither is anything the service needs.
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, who),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, who),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who),
    ]
    for table in tables:
        grant = TABLE_GRANTS[table]
        name = sql.Identifier(table)
        run.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in grant.privileges), name, who
            )
        )
        if grant.update_columns:
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in grant.update_columns)
            run.append(sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(columns, name, who))
    sequences = [seq for seq, table in _table_sequences(cursor) if TABLE_GRANTS[table].inserts]
    for sequence in sequences:
        # nextval (the services allocate ids before they write: ledger/work.py next_ids); no setval.
        run.append(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), who))
    for statement in run:
        cursor.execute(statement)
    differences = privilege_problems(cursor, runtime=runtime)
    if differences:
        raise RolesRefused("after the grant the runtime role still differs from the map: " + "; ".join(differences))
    return {"owner": owner, "runtime": runtime, "database": database, "tables": len(tables), "sequences": sequences}


def role_problems(cursor: Any, *, runtime: str) -> list[str]:
    """What makes ``runtime`` more than a runtime role: attributes that bypass privileges, or
    owning (itself or through a role it belongs to) anything in this database."""
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s",
        [runtime],
    )
    found = cursor.fetchone()
    if found is None:
        return [f"role {runtime} does not exist (manage.py db_roles create, or docs/db-roles.md)"]
    names = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")
    problems = [f"the runtime role {runtime} has {name}" for name, flag in zip(names, found, strict=True) if flag]
    cursor.execute(
        "SELECT DISTINCT pg_get_userbyid(owner) FROM ("
        " SELECT relowner AS owner FROM pg_class WHERE relnamespace = %(schema)s::text::regnamespace"
        " UNION ALL SELECT proowner FROM pg_proc WHERE pronamespace = %(schema)s::text::regnamespace"
        " UNION ALL SELECT nspowner FROM pg_namespace WHERE nspname = %(schema)s::text"
        " UNION ALL SELECT datdba FROM pg_database WHERE datname = current_database()"
        ") owners WHERE pg_has_role(%(role)s, owner, 'MEMBER') ORDER BY 1",
        {"schema": SCHEMA, "role": runtime},
    )
    for (owner,) in cursor.fetchall():
        via = "" if owner == runtime else f" (it is a member of {owner}, which owns them)"
        problems.append(f"the runtime role {runtime} owns objects of this database{via}")
    cursor.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(%s, oid, 'MEMBER') ORDER BY 1",
        [list(POWERFUL_ROLES), runtime],
    )
    problems += [f"the runtime role {runtime} is a member of {name}" for (name,) in cursor.fetchall()]
    return problems


def privilege_problems(cursor: Any, *, runtime: str) -> list[str]:
    """Every way the runtime role's privileges, as PostgreSQL computes them (PUBLIC, memberships
    and predefined roles such as pg_write_all_data included), differ from ``TABLE_GRANTS``."""
    problems = role_problems(cursor, runtime=runtime)
    cursor.execute(
        "SELECT has_schema_privilege(%(r)s, %(s)s, 'CREATE'), has_schema_privilege(%(r)s, %(s)s, 'USAGE'), "
        "has_database_privilege(%(r)s, current_database(), 'CREATE'), "
        "has_database_privilege(%(r)s, current_database(), 'TEMPORARY')",
        {"r": runtime, "s": SCHEMA},
    )
    schema_create, schema_usage, db_create, db_temp = cursor.fetchone()
    if schema_create or db_create:
        problems.append(f"{runtime} may create objects (CREATE on the schema or the database)")
    if db_temp:
        problems.append(f"{runtime} may create temporary tables (REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC)")
    if not schema_usage:
        problems.append(f"{runtime} has no USAGE on schema {SCHEMA}")
    for table in schema_tables(cursor):
        grant = TABLE_GRANTS.get(table)
        if grant is None:
            problems.append(f"table {table} is not classified in TABLE_GRANTS")
            continue
        qualified = f"{SCHEMA}.{table}"
        for privilege, wanted in expected_privileges(grant).items():
            cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [runtime, qualified, privilege])
            if cursor.fetchone()[0] != wanted:
                problems.append(f"{table}: {privilege} is {'missing' if wanted else 'granted'}")
        if "UPDATE" not in grant.privileges:
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                "AND has_column_privilege(%s, attrelid, attnum, 'UPDATE') ORDER BY attname",
                [qualified, runtime],
            )
            updatable = {row[0] for row in cursor.fetchall()}
            if updatable != set(grant.update_columns):
                problems.append(
                    f"{table}: UPDATE of columns {sorted(updatable)}, the map says {sorted(grant.update_columns)}"
                )
    for sequence, table in _table_sequences(cursor):
        wanted = TABLE_GRANTS.get(table, READ).inserts
        cursor.execute(
            "SELECT has_sequence_privilege(%s, %s, 'USAGE'), has_sequence_privilege(%s, %s, 'UPDATE')",
            [runtime, f"{SCHEMA}.{sequence}", runtime, f"{SCHEMA}.{sequence}"],
        )
        usage, update = cursor.fetchone()
        if usage != wanted:
            problems.append(f"sequence {sequence}: USAGE is {'missing' if wanted else 'granted'}")
        if update:
            problems.append(f"sequence {sequence}: UPDATE (setval) is granted")
    return problems


def roles_create(
    cursor: Any, *, owner: str, owner_password: str | None, runtime: str, runtime_password: str | None
) -> list[str]:
    """As a role that may create roles (a superuser; on a managed PostgreSQL its admin role with
    CREATEROLE): make the owner and runtime roles when they are missing, set the passwords given,
    and hand the database, its schema and the schema objects the connected role owns to the owner
    (a database once migrated by the admin). Idempotent. Returns what it did."""
    cursor.execute("SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user")
    admin, database, admin_super = cursor.fetchone()
    if runtime in (admin, owner):
        raise RolesRefused(f"the runtime role {runtime} must be a role of its own, neither {admin} nor the owner")
    done = []
    for name, password in ((owner, owner_password), (runtime, runtime_password)):
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        exists = cursor.fetchone() is not None
        if name == admin:
            continue
        # No attribute but LOGIN: not a superuser, no CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS.
        statement = sql.SQL("ALTER ROLE {} LOGIN" if exists else "CREATE ROLE {} LOGIN").format(sql.Identifier(name))
        if password:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        cursor.execute(statement)
        done.append(f"{'updated' if exists else 'created'} role {name}")
    ident_owner, ident_db, schema = sql.Identifier(owner), sql.Identifier(database), sql.Identifier(SCHEMA)
    if owner != admin:
        if not admin_super:
            # Handing objects to a role needs membership in it (a managed PostgreSQL's admin role).
            cursor.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", [owner])
            if not cursor.fetchone()[0]:
                cursor.execute(sql.SQL("GRANT {} TO {}").format(ident_owner, sql.Identifier(admin)))
        cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident_db, ident_owner))
        cursor.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(schema, ident_owner))
        done.append(f"database {database} and schema {SCHEMA} given to {owner}")
        done += _objects_hand_over(cursor, owner=owner)
    return done


_ALTER_BY_KIND = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}


def _objects_hand_over(cursor: Any, *, owner: str) -> list[str]:
    """ALTER ... OWNER TO the owner for each schema object the connected role owns (a sequence
    owned by a column follows its table)."""
    cursor.execute(
        "SELECT c.relkind, c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace "
        "AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i') "
        "AND c.relkind = 'S') ORDER BY c.relname",
        [SCHEMA],
    )
    relations = cursor.fetchall()
    cursor.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = %s::regnamespace "
        "AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY 1",
        [SCHEMA],
    )
    functions = [row[0] for row in cursor.fetchall()]
    for kind, name in relations:
        cursor.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(_ALTER_BY_KIND[kind]), sql.Identifier(SCHEMA), sql.Identifier(name), sql.Identifier(owner)
            )
        )
    for signature in functions:
        # regprocedure's text is the quoted, schema-qualified signature PostgreSQL itself printed.
        cursor.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), sql.Identifier(owner)))
    if relations or functions:
        return [f"{len(relations)} relations and {len(functions)} functions given to {owner}"]
    return []
