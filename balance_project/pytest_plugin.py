"""Loaded by pytest before Django's settings (``-p balance_project.pytest_plugin`` in pyproject.toml).

Settings refuse a configured database without keys of its own (balance_project/secrecy.py), and
the PostgreSQL test runs configure one: each test session gets fresh random keys, unless the
environment already names some. The processes a test starts (a sidecar, gunicorn) inherit them.
"""

from __future__ import annotations

import os

from balance_project.secrecy import throwaway_keys_setdefault

throwaway_keys_setdefault(os.environ, purpose="test-session")
