"""Loaded by pytest before Django's settings (``-p balance_project.pytest_plugin`` in pyproject.toml).

Settings refuse a configured database without keys of its own (balance_project/secrecy.py), and
the PostgreSQL test runs configure one: each test session gets fresh random keys, unless the
environment already names some. The processes a test starts (a sidecar, gunicorn) inherit them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from balance_project.secrecy import throwaway_keys_setdefault

throwaway_keys_setdefault(os.environ, purpose="test-session")


def _own_resources_per_xdist_worker(environ: MutableMapping[str, str]) -> None:
    """Under pytest-xdist (``-n``) each worker process gets its own var directory (the SQLite test
    database, the Celery broker folder) and its own Redis database, so one worker's flush of the
    cache never empties another's in the middle of a test. pytest-django already suffixes the
    PostgreSQL test database's name per worker."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    number = int(worker[2:])
    base = environ.get("BALANCE_VAR_DIR") or str(Path(__file__).resolve().parent.parent / "var")
    environ["BALANCE_VAR_DIR"] = str(Path(base) / f"xdist-{worker}")
    redis_url = environ.get("REDIS_URL")
    if redis_url:
        parts = urlsplit(redis_url)
        database = int(parts.path.strip("/") or 0) + number * XDIST_REDIS_DB_STRIDE
        environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{database % 16}"))


# Worker N uses Redis database (REDIS_URL's + N * stride) mod 16; the stride keeps two workers
# apart from each other and from the neighbouring databases other runs on this machine use.
XDIST_REDIS_DB_STRIDE = 3

_own_resources_per_xdist_worker(os.environ)
