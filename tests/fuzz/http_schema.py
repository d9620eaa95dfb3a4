"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis: ``make fuzz-http`` (CI runs it).

Starts the service (gunicorn) on the embedded default in a temporary folder, makes a key with every
scope and a few resources (two wallets with money, a table with a seated player, a pending
reservation) so the generated calls reach the services rather than only 404s, then runs
``st run`` over every operation with every check and a fixed seed (tests/fuzz/schemathesis.toml).
Any failure, a 5xx or a mismatch between what the schema says and what the server does, fails
the run. Bounded by ``--max-time`` (about two minutes in CI).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
GUNICORN_CONF = "balance_project/gunicorn.conf.py"
sys.path.insert(0, str(BASE_DIR))

from tests.ops.test_service_e2e import free_port  # noqa: E402


def call(base: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"seed-{time.monotonic_ns()}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def seed(base: str, key: str) -> None:
    """Resources under the ids and names the generator tries first (1, 2, ..., "0"): wallets with
    money, a table with a seated player, a pending reservation."""
    wallets = [
        call(base, key, "POST", "/api/v1/accounts", {"owner_ref": owner, "currency": "EUR"})["account"]
        for owner in ("0", "fuzz-bob")
    ]
    for wallet in wallets:
        call(base, key, "POST", f"/api/v1/accounts/{wallet['id']}/deposit", {"amount": 1_000_000})
    call(base, key, "POST", "/api/v1/tables", {"table_id": "0", "currency": "EUR"})
    call(base, key, "POST", "/api/v1/tables/0/buy-in", {"user_id": "0", "amount": 5000})
    call(base, key, "POST", "/api/v1/reservations", {"user_id": "fuzz-bob", "table_id": "0", "amount": 700})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=int, default=120, help="seconds for the whole run")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="balance-fuzz-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}} | {
        "BALANCE_VAR_DIR": str(workdir / "var"),
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_THREADS": "4",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=300)
    key = subprocess.run(
        [python, "manage.py", "create_api_key", "--client", "fuzz", "--all-scopes"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(workdir / "gunicorn.log", "w")
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", GUNICORN_CONF, "-b", f"127.0.0.1:{port}", "balance_project.wsgi"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print((workdir / "gunicorn.log").read_text()[-3000:])
                    return 2
                time.sleep(0.3)
        seed(base, key)
        st = shutil.which("st", path=str(Path(python).parent)) or "st"
        command = [st, "--config-file", str(CONFIG), "run", f"{base}/api/schema/?format=json"]
        command += ["--header", f"Authorization: Bearer {key}", "--max-time", str(args.max_time)]
        print("$", " ".join(command).replace(key, "<key>"), flush=True)
        result = subprocess.run(command, cwd=workdir, env=env | {"NO_COLOR": "1"})
        server_log = (workdir / "gunicorn.log").read_text()
        if "Traceback" in server_log:
            print("the server logged a traceback:\n" + server_log[-4000:])
            return 1
        return result.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
