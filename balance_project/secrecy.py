"""Keys that production must own, and what a debug page may show.

The embedded default runs on placeholder keys printed in this repository, so a new user needs
nothing. Anything else (a configured database, or ``DJANGO_SECURE=1``) holds real money or will:
there the service refuses to start unless ``DJANGO_SECRET_KEY`` and ``LEDGER_HMAC_KEY`` are its own,
at least ``MIN_KEY_BYTES`` long and not a placeholder. ``manage.py check --deploy`` says the same of
the embedded default (``balance.W001``), which may run on them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

MIN_KEY_BYTES = 32
EMBEDDED_SECRET_KEY = "embedded-default-not-secret-" + "x" * 40
EMBEDDED_LEDGER_HMAC_KEY = "embedded-default-ledger-key"
# Every key value this repository has ever printed as a default or an example: all public.
PUBLIC_KEYS = frozenset(
    {
        EMBEDDED_SECRET_KEY,
        EMBEDDED_LEDGER_HMAC_KEY,
        "compose-local-only-secret-key-change-me-0123456789abcdef",
        "compose-local-only-ledger-key-change-me",
    }
)
REQUIRED_KEYS = ("DJANGO_SECRET_KEY", "LEDGER_HMAC_KEY")


def key_problems(environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the keys in ``environ`` for a production run (empty when they are fine)."""
    problems = []
    for name in REQUIRED_KEYS:
        value = environ.get(name, "")
        if not value:
            problems.append(f"{name} must be set")
        elif value in PUBLIC_KEYS or value.startswith("embedded-default"):
            problems.append(f"{name} is a public placeholder from this repository")
        elif len(value.encode()) < MIN_KEY_BYTES:
            problems.append(f"{name} must be at least {MIN_KEY_BYTES} bytes")
    return problems


def production_key_problems(environ: Mapping[str, str], *, production: bool) -> str | None:
    """The refusal message for settings, or None: production (a configured database or
    DJANGO_SECURE=1) must run on keys of its own."""
    if not production:
        return None
    problems = key_problems(environ)
    if not problems:
        return None
    return (
        "; ".join(problems) + ": with a configured DATABASE_URL or DJANGO_SECURE=1 the service needs keys of its "
        f"own of at least {MIN_KEY_BYTES} bytes, e.g. "
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"` (docs/operations.md)'
    )


def throwaway_keys_setdefault(environ: dict[str, str] | os._Environ[str], *, purpose: str) -> None:
    """Give a run on a scratch database (a test session, a benchmark) fresh random keys where
    ``environ`` names none, so it passes the check above without any key written down."""
    for name in REQUIRED_KEYS:
        environ.setdefault(name, f"{purpose}-" + secrets.token_urlsafe(32))
