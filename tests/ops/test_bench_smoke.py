"""bench/http_load.py still speaks the API: a tiny bounded run on SQLite ends with balanced books.

No figure is checked (benchmarks are not tests): only that every request succeeded and the money adds up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded_default

BASE_DIR = Path(__file__).resolve().parents[2]


def test_http_load_runs_and_the_books_balance(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "bench/http_load.py",
            "--threads",
            "2",
            "--wallets",
            "3",
            "--max-requests",
            "12",
            "--seconds",
            "60",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "deposits        12 ok     0 err" in out
    assert "transfers       12 ok     0 err" in out
    assert "books: wallets hold 30001200 = funding + 12 deposits x 100: balanced" in out
    assert not any(tmp_path.glob("balance-bench-*")), "the temporary var dir was left behind"
