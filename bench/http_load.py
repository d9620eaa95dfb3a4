"""HTTP load benchmark: deposits/s and transfers/s with p50/p99 latency through the JSON API.

    .venv/bin/python bench/http_load.py                       # SQLite in a temporary var dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/balance_bench .venv/bin/python bench/http_load.py

By default it starts its own gunicorn (balance_project/gunicorn.conf.py, access log off) on a free
127.0.0.1 port against the database DATABASE_URL selects (migrated first; use a scratch database:
the run adds wallets and transactions) or a SQLite file in a temporary folder, makes an API key and
wallets, runs each phase, checks the books, prints figures and stops the server. ``--url`` with
``--api-key`` measures a server already running on this machine instead (loopback only).

Each thread keeps its own keep-alive connection. Every phase is bounded by --seconds and by
--max-requests, whichever comes first. Every request carries a fresh Idempotency-Key.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from balance_project.secrecy import throwaway_keys_setdefault  # noqa: E402

# A scratch database: throwaway keys unless the environment names some (balance_project/secrecy.py).
throwaway_keys_setdefault(os.environ, purpose="bench")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CURRENCY = "EUR"
DEPOSIT_AMOUNT = 100
TRANSFER_AMOUNT = 1
# Each wallet's starting float: enough that no transfer in a bounded run is refused for funds.
FLOAT_PER_WALLET = 10_000_000


class Client:
    """One keep-alive connection to the API with a key; JSON in, (status, JSON) out."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.api_key = api_key
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # reconnect on the next call
            raise
        return response.status, (json.loads(data) if data else {})

    def close(self) -> None:
        self.connection.close()


@dataclass
class PhaseResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    elapsed: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def line(self) -> str:
        ok = len(self.latencies)
        rate = ok / self.elapsed if self.elapsed else 0.0
        errors = sum(self.errors.values())
        text = (
            f"{self.name:<10} {ok:>7} ok {errors:>5} err {self.elapsed:6.1f} s {rate:8.1f}/s   "
            f"p50 {self.percentile(50) * 1000:6.1f} ms  p90 {self.percentile(90) * 1000:6.1f} ms  "
            f"p99 {self.percentile(99) * 1000:6.1f} ms  max {max(self.latencies, default=0) * 1000:6.1f} ms"
        )
        if self.errors:
            text += "\n" + " " * 11 + "errors: " + ", ".join(f"{code} x{n}" for code, n in self.errors.most_common())
        return text


def run_phase(
    name: str, *, base_url: str, api_key: str, threads: int, seconds: float, max_requests: int, make_request
) -> PhaseResult:
    """Run ``make_request(client, rng) -> (method, path, body, expected_status)`` on every thread."""
    result = PhaseResult(name)
    lock = threading.Lock()
    budget = iter(range(max_requests))
    start_line = threading.Barrier(threads + 1)
    deadline_box: list[float] = []

    def worker(index: int) -> None:
        client = Client(base_url, api_key)
        rng = random.Random(index)
        latencies, errors = [], Counter()
        start_line.wait()
        try:
            while time.monotonic() < deadline_box[0]:
                with lock:
                    if next(budget, None) is None:
                        break
                method, path, body, expected = make_request(client, rng)
                started = time.perf_counter()
                try:
                    status, data = client.call(method, path, body)
                except (http.client.HTTPException, OSError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if status == expected:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[f"{status} {data.get('error', {}).get('code', '?')}"] += 1
        finally:
            client.close()
            with lock:
                result.latencies.extend(latencies)
                result.errors.update(errors)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    started = time.monotonic()
    deadline_box.append(started + seconds)
    start_line.wait()
    for thread in pool:
        thread.join(timeout=seconds + 60)
    result.elapsed = time.monotonic() - started
    return result


# --- the server under test --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnServer:
    """gunicorn on a free loopback port, on DATABASE_URL or a SQLite file in a temporary folder."""

    def __init__(self, *, web_concurrency: int, gunicorn_threads: int) -> None:
        self.var_dir = tempfile.mkdtemp(prefix="balance-bench-")
        self.port = free_port()
        self.env = {
            **os.environ,
            "BALANCE_VAR_DIR": self.var_dir,
            "HTTP_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_ACCESSLOG": "",
            "WEB_CONCURRENCY": str(web_concurrency),
            "GUNICORN_THREADS": str(gunicorn_threads),
            "LOG_LEVEL": "WARNING",
            # The load includes transfers, which the operator's policy turns off by default.
            "PLAYER_TRANSFERS_ENABLED": "1",
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen | None = None
        self.log = open(Path(self.var_dir) / "gunicorn.log", "w+")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> str:
        """Migrate, make a key, start gunicorn and wait for /health. Returns the key."""
        self.manage("migrate", "--noinput")
        api_key = self.manage("create_api_key", "--client", f"bench-{uuid.uuid4().hex[:8]}", "--all-scopes").strip()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(BASE_DIR / "balance_project" / "gunicorn.conf.py"),
                "balance_project.wsgi:application",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return api_key
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /health within 60 s:\n" + self.log_text())

    def log_text(self) -> str:
        self.log.flush()
        return (Path(self.var_dir) / "gunicorn.log").read_text()[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.var_dir, ignore_errors=True)


# --- the benchmark ----------------------------------------------------------------------------------


def wallets_open(base_url: str, api_key: str, count: int) -> list[int]:
    client = Client(base_url, api_key)
    run = uuid.uuid4().hex[:8]
    ids = []
    try:
        for i in range(count):
            status, data = client.call(
                "POST", "/api/v1/accounts", {"owner_ref": f"bench-{run}-{i}", "currency": CURRENCY}
            )
            if status != 201:
                raise SystemExit(f"opening a wallet failed: {status} {data}")
            account_id = data["account"]["id"]
            status, data = client.call("POST", f"/api/v1/accounts/{account_id}/deposit", {"amount": FLOAT_PER_WALLET})
            if status != 201:
                raise SystemExit(f"funding a wallet failed: {status} {data}")
            ids.append(account_id)
    finally:
        client.close()
    return ids


def balances_total(base_url: str, api_key: str, wallet_ids: list[int]) -> int:
    client = Client(base_url, api_key)
    try:
        total = 0
        for account_id in wallet_ids:
            status, data = client.call("GET", f"/api/v1/accounts/{account_id}/balance")
            if status != 200:
                raise SystemExit(f"reading a balance failed: {status} {data}")
            total += data["balance"]
        return total
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8, help="client threads, one connection each (default 8)")
    parser.add_argument("--seconds", type=float, default=15.0, help="time limit per phase (default 15)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="request limit per phase (default 20000)")
    parser.add_argument("--wallets", type=int, default=32, help="wallets the load is spread over (default 32)")
    parser.add_argument(
        "--web-concurrency", type=int, default=1, help="gunicorn processes of its own server (default 1)"
    )
    parser.add_argument("--gunicorn-threads", type=int, default=8, help="threads per gunicorn process (default 8)")
    parser.add_argument("--url", help="measure this running server instead (127.0.0.1/localhost/::1 only)")
    parser.add_argument(
        "--api-key",
        help="with --url: a key with accounts:write, payments:write, transfers:write "
        "(and the server run with PLAYER_TRANSFERS_ENABLED=1)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.threads <= 256 or args.seconds <= 0 or args.max_requests < 1 or args.wallets < 2:
        parser.error("need 1-256 threads, positive seconds and requests, and at least 2 wallets")

    server = None
    if args.url:
        if urllib.parse.urlsplit(args.url).hostname not in LOOPBACK or not args.api_key:
            parser.error("--url must point at this machine's loopback and needs --api-key")
        base_url, api_key = args.url.rstrip("/"), args.api_key
        database = "the running server's"
    else:
        server = OwnServer(web_concurrency=args.web_concurrency, gunicorn_threads=args.gunicorn_threads)
        database = "PostgreSQL (DATABASE_URL)" if os.environ.get("DATABASE_URL") else "SQLite (temporary file)"
        redis = "Redis" if os.environ.get("REDIS_URL") else "no Redis"
        database += f", {redis}"
    try:
        if server is not None:
            api_key = server.start()
            base_url = server.url
            print(
                f"server: gunicorn {args.web_concurrency} process(es) x {args.gunicorn_threads} threads on {base_url}"
            )
        print(
            f"database: {database}; client: {args.threads} threads, keep-alive; "
            f"each phase <= {args.seconds:g} s and <= {args.max_requests} requests"
        )
        wallet_ids = wallets_open(base_url, api_key, args.wallets)

        def deposit(client, rng):
            return "POST", f"/api/v1/accounts/{rng.choice(wallet_ids)}/deposit", {"amount": DEPOSIT_AMOUNT}, 201

        def transfer(client, rng):
            source, target = rng.sample(wallet_ids, 2)
            body = {"from_account_id": source, "to_account_id": target, "amount": TRANSFER_AMOUNT}
            return "POST", "/api/v1/transfers", body, 201

        common = dict(
            base_url=base_url,
            api_key=api_key,
            threads=args.threads,
            seconds=args.seconds,
            max_requests=args.max_requests,
        )
        deposits = run_phase("deposits", make_request=deposit, **common)
        print(deposits.line())
        transfers = run_phase("transfers", make_request=transfer, **common)
        print(transfers.line())

        expected = args.wallets * FLOAT_PER_WALLET + len(deposits.latencies) * DEPOSIT_AMOUNT
        total = balances_total(base_url, api_key, wallet_ids)
        books = "balanced" if total == expected else f"WRONG: wallets hold {total}, deposits say {expected}"
        print(f"books: wallets hold {total} = funding + {len(deposits.latencies)} deposits x {DEPOSIT_AMOUNT}: {books}")
        return 0 if total == expected else 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
