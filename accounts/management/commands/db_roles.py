"""Least-privilege database roles on PostgreSQL: `manage.py db_roles create|migrate|grant|check|local`.

The service's processes connect with ``DATABASE_URL``: the runtime role. Migrations run as the owner
role of ``MIGRATION_DATABASE_URL``, which no service process is given. See docs/db-roles.md.

- ``create``: as ``DB_ADMIN_URL`` (a role that may create roles), make both roles with the
  passwords of their URLs and hand the database to the owner. Idempotent.
- ``migrate``: ``manage.py migrate`` as the owner, then ``grant``. What a deploy runs.
- ``grant``: as the owner, give the runtime role exactly balance_project/db_roles.py TABLE_GRANTS
  (refused while a table is not classified there). Idempotent.
- ``check``: compare the runtime role's privileges with the map; exit 1 on any difference.
- ``local`` (``make run``, CI): ``DATABASE_URL`` is a role that may create roles (a local
  superuser). Makes ``<database>_owner`` and ``<database>_app`` with passwords kept in
  ``--env-file`` (mode 0600), which it writes as shell ``export`` lines of both URLs.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg.conninfo import make_conninfo

from balance_project import db_roles

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"


def connect(url: str) -> psycopg.Connection:
    """A plain psycopg connection (not Django's) to the database and as the role ``url`` names."""
    parsed = dj_database_url.parse(url)
    if not parsed["ENGINE"].startswith("django.db.backends.postgresql"):
        raise CommandError("database roles are for PostgreSQL: the URL is not postgres://")
    params: dict[str, Any] = {k: v for k, v in (parsed.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    params.setdefault("connect_timeout", 5)
    params |= {"dbname": parsed["NAME"], "user": parsed["USER"], "password": parsed["PASSWORD"]}
    params |= {"host": parsed["HOST"], "port": parsed["PORT"]}
    return psycopg.connect(make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")}))


def role_of(url: str) -> tuple[str, str | None, str]:
    """(role, password, database) of a connection URL."""
    parsed = dj_database_url.parse(url)
    if not parsed.get("USER"):
        raise CommandError("a database URL names its role: postgres://ROLE:PASSWORD@HOST:PORT/DATABASE")
    return parsed["USER"], parsed.get("PASSWORD") or None, parsed["NAME"]


def url_with_role(url: str, role: str, password: str) -> str:
    """``url`` with its role and password replaced (same host, port, database and options)."""
    scheme, rest = url.split("://", 1)
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{quote(role, safe='')}:{quote(password, safe='')}@{host}"


class Command(BaseCommand):
    help = "Create and grant the owner and runtime database roles (docs/db-roles.md)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "migrate", "grant", "check", "local"])
        parser.add_argument(
            "--env-file",
            default=str(Path(settings.VAR_DIR) / "db-roles.env"),
            help="local: where the two roles' URLs are kept (default: $BALANCE_VAR_DIR/db-roles.env).",
        )

    def handle(self, *args: Any, action: str, env_file: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action}")(env_file=env_file)
        except db_roles.RolesRefused as refused:
            raise CommandError(str(refused)) from None
        except psycopg.Error as error:
            raise CommandError(f"{action}: PostgreSQL refused: {error}".strip()) from None

    # -- the URLs ---------------------------------------------------------------------------------
    def _runtime_url(self) -> str:
        if not settings.DATABASE_URL:
            raise CommandError("DATABASE_URL names the runtime role; it is not set (the embedded SQLite has no roles)")
        return settings.DATABASE_URL

    def _owner_url(self) -> str:
        if not settings.MIGRATION_DATABASE_URL:
            raise CommandError("MIGRATION_DATABASE_URL names the owner role that runs the migrations; it is not set")
        if role_of(settings.MIGRATION_DATABASE_URL)[2] != role_of(self._runtime_url())[2]:
            raise CommandError("MIGRATION_DATABASE_URL and DATABASE_URL must name the same database")
        return settings.MIGRATION_DATABASE_URL

    # -- actions ------------------------------------------------------------------------------------
    def _create(self, **_: Any) -> None:
        if not settings.DB_ADMIN_URL:
            raise CommandError("DB_ADMIN_URL names a role that may create roles (a superuser, or CREATEROLE)")
        self._create_as(settings.DB_ADMIN_URL, owner_url=self._owner_url(), runtime_url=self._runtime_url())

    def _create_as(self, admin_url: str, *, owner_url: str, runtime_url: str) -> None:
        owner, owner_password, _ = role_of(owner_url)
        runtime, runtime_password, _ = role_of(runtime_url)
        try:
            with connect(admin_url) as conn, conn.cursor() as cursor:
                done = db_roles.roles_create(
                    cursor,
                    owner=owner,
                    owner_password=owner_password,
                    runtime=runtime,
                    runtime_password=runtime_password,
                )
        except psycopg.errors.InsufficientPrivilege as refused:
            raise CommandError(
                f"{refused}".strip() + f"\n{role_of(admin_url)[0]} may not create roles or hand over the database: "
                "connect as a superuser (or a managed PostgreSQL's admin role), or make the two roles yourself "
                "and set MIGRATION_DATABASE_URL (owner) and DATABASE_URL (runtime role): docs/db-roles.md"
            ) from None
        for line in done:
            self.stdout.write(line)

    def _migrate(self, **_: Any) -> None:
        owner_url = self._owner_url()
        env = {**os.environ, "DATABASE_URL": owner_url}
        env.pop("MIGRATION_DATABASE_URL", None)
        # Its own process: every migration (RunPython ones too) then runs on the owner's connection.
        done = subprocess.run([sys.executable, str(MANAGE_PY), "migrate", "--noinput"], env=env, check=False)
        if done.returncode:
            raise CommandError(f"migrate as the owner failed (exit {done.returncode})")
        self._grant()

    def _grant(self, **_: Any) -> None:
        runtime = role_of(self._runtime_url())[0]
        with connect(self._owner_url()) as conn, conn.cursor() as cursor:
            granted = db_roles.grant_runtime(cursor, runtime=runtime)
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if (cursor.fetchone() or (False,))[0]:
                self.stderr.write(f"warning: the owner {granted['owner']} is a superuser; it need not be")
        self.stdout.write(
            f"granted {runtime} the map on {granted['tables']} tables and {len(granted['sequences'])} sequences "
            f"of {granted['database']} (owner {granted['owner']})"
        )

    def _check(self, **_: Any) -> None:
        runtime = role_of(self._runtime_url())[0]
        url = settings.MIGRATION_DATABASE_URL or self._runtime_url()
        with connect(url) as conn, conn.cursor() as cursor:
            problems = db_roles.privilege_problems(cursor, runtime=runtime)
            conn.rollback()
        if problems:
            raise CommandError(f"the runtime role {runtime} differs from the map:\n  " + "\n  ".join(problems))
        self.stdout.write(f"the runtime role {runtime} has exactly the map's privileges")

    def _local(self, *, env_file: str) -> None:
        admin_url = self._runtime_url()
        _, _, database = role_of(admin_url)
        base = re.sub(r"[^a-z0-9_]", "_", database.lower())[:50]
        path = Path(env_file)
        kept = _env_file_read(path)
        owner_url = kept.get("MIGRATION_DATABASE_URL") or url_with_role(admin_url, f"{base}_owner", _password())
        runtime_url = kept.get("DATABASE_URL") or url_with_role(admin_url, f"{base}_app", _password())
        if role_of(owner_url)[2] != database or role_of(runtime_url)[2] != database:
            # A file left from another database: new roles for this one.
            owner_url = url_with_role(admin_url, f"{base}_owner", _password())
            runtime_url = url_with_role(admin_url, f"{base}_app", _password())
        self._create_as(admin_url, owner_url=owner_url, runtime_url=runtime_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# Written by `manage.py db_roles local` (docs/db-roles.md): the owner, then the runtime role.\n")
            out.write(f"export MIGRATION_DATABASE_URL='{owner_url}'\nexport DATABASE_URL='{runtime_url}'\n")
        self.stdout.write(f"roles {role_of(owner_url)[0]} and {role_of(runtime_url)[0]}: their URLs are in {path}")


def _password() -> str:
    # URL- and shell-safe characters only.
    return secrets.token_urlsafe(32)


def _env_file_read(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            match = re.fullmatch(r"export (\w+)='([^']*)'", line.strip())
            if match:
                found[match.group(1)] = match.group(2)
    return found
