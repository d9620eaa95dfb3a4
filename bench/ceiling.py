"""The service against PostgreSQL's own ceiling, side by side in one run on one PostgreSQL.

    .venv/bin/python bench/ceiling.py                 # or: make bench
    .venv/bin/python bench/ceiling.py --compare-with /tmp/balance-f93ecef   # another checkout too

In order, each on a fresh database of its own on the PostgreSQL at --pg (loopback only):
1. pgbench TPC-B-like, scale 16, 16 clients, simple protocol: the database's own rate on this machine;
   then the floor of the stack (bench/floor.py): a bare grpcio server whose one method is a transfer
   in the service's shape (lock and read, decide in Python, write and COMMIT), same 16 callers;
2. the gRPC full mix (bench/grpc_load.py, two sidecar processes): unloaded latency (one call at a
   time), then the closed loop with 16 callers, then the open loop at half the closed-loop rate
   just measured; the CPU per call of the sidecar and of PostgreSQL, and the bound that
   PostgreSQL's share puts on the closed loop (with a sidecar as lean as the floor's server);
3. round trips to the database per hot call, counted in process on the same code path;
4. the HTTP deposits and transfers (bench/http_load.py).
Prints each figure and the ratios that matter: closed-loop calls/s over pgbench tps, and each
method's p99 at half load over 50 ms and over 5x its unloaded p50. With --compare-with, step 2 also
runs the other checkout's own bench/grpc_load.py (with its .venv) right after ours, on its own
fresh database, so that a change can be compared with the commit before it in the same run.
Absolute figures drift 2x between runs on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from balance_project.secrecy import throwaway_keys_setdefault  # noqa: E402
from bench.cpu import database_note, per_call_ms, postgres_cpu_seconds  # noqa: E402

METHODS = ("BuyIn", "GetBalance", "Reserve", "CommitReservation", "SettleHand", "CashOut")
ROW = re.compile(r"^\s+(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$")
RATE = re.compile(r"= ([\d.]+) calls/s \((\d+) errors\)")
CPU = re.compile(r"server CPU \(all its processes\): ([\d.]+) ms per call")
DATABASE_CPU = re.compile(r"PostgreSQL CPU \(all its processes\): ([\d.]+) ms per call")


def run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 900) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def fresh_database(pg: str, name: str) -> str:
    run(
        [
            "psql",
            pg + "/postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"DROP DATABASE IF EXISTS {name}",
            "-c",
            f"CREATE DATABASE {name}",
        ]
    )
    return f"{pg}/{name}"


def deployment(url: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of a service on database ``url``: its own cache key prefix, since the fresh
    databases reuse account ids and share one Redis (as two deployments must not share a prefix)."""
    name = urllib.parse.urlsplit(url).path.strip("/")
    return {**env, "DATABASE_URL": url, "CACHE_KEY_PREFIX": f"{name}-{int(time.time())}"}


def pgbench(pg: str, seconds: int) -> tuple[float, float | None]:
    """-> (tps, PostgreSQL's CPU ms per transaction)"""
    url = fresh_database(pg, "balance_ceiling_pgbench")
    run(["pgbench", "-i", "-q", "-s", "16", url])
    before = postgres_cpu_seconds()
    out = run(["pgbench", "-n", "-M", "simple", "-c", "16", "-j", "2", "-T", str(seconds), url])
    after = postgres_cpu_seconds()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if not match or not done:
        raise SystemExit(f"could not read pgbench's tps:\n{out}")
    return float(match[1]), per_call_ms(before, after, int(done[1]))


def parse_phase(text: str, title: str) -> dict:
    """The figures of one phase of grpc_load.py's report (the block that starts with ``title``)."""
    block = text[text.index(title) :].split("\n\n")[0].splitlines()
    rate = RATE.search(block[0])
    methods = {}
    for line in block[2:]:
        row = ROW.match(line)
        if row:
            methods[row[1]] = {"ok": int(row[2]), "p50": float(row[4]), "p95": float(row[5]), "p99": float(row[6])}
        if line.startswith(("open loop", "closed loop")):
            break
    cpu = CPU.search(text[text.index(title) :])
    database_cpu = DATABASE_CPU.search(text[text.index(title) :])
    return {
        "database_ms": float(database_cpu[1]) if database_cpu else None,
        "rate": float(rate[1]),
        "errors": int(rate[2]),
        "methods": methods,
        "cpu_ms": float(cpu[1]) if cpu else None,
    }


def grpc_mix(python: str, repo: Path, url: str, env: dict[str, str], seconds: int) -> dict:
    """Unloaded floor and closed loop, then the open loop at half the closed-loop rate."""
    env = deployment(url, env)
    script = [python, "bench/grpc_load.py", "--mix", "full", "--processes", "2"]
    first = run(
        [*script, "--sequential", "300", "--closed-seconds", str(seconds), "--rate", "20", "--open-seconds", "1"],
        env=env,
        cwd=repo,
    )
    sequential = parse_phase(first, "sequential, one call at a time")
    closed = parse_phase(first, "closed loop, 16 concurrent clients")
    rate = max(1.0, closed["rate"] / 2)
    second = run([*script, "--skip-closed", "--rate", f"{rate:.0f}", "--open-seconds", str(seconds)], env=env, cwd=repo)
    opened = parse_phase(second, f"open loop, {rate:.0f} calls/s offered")
    return {"sequential": sequential, "closed": closed, "open": opened, "open_rate": rate}


def round_trips(url: str) -> dict[str, int]:
    """Database round trips of each hot call, counted on the service functions the sidecar calls."""
    os.environ.update(deployment(url, dict(os.environ)))
    # Transfers are off by default (an operator's choice); the count includes them, as HTTP serves them.
    os.environ["PLAYER_TRANSFERS_ENABLED"] = "1"
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=dict(os.environ))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import account_deposit, account_open, account_transfer, account_withdraw
    from reservations.services import reservation_commit, reservation_release, reservation_reserve
    from tables.services import hand_settle, seat_cash_out, table_buy_in, table_open

    tag = f"rt{int(time.time())}"
    keys = iter(f"{tag}-{n}" for n in range(10_000))
    table = f"{tag}-t"
    table_open(client=tag, idempotency_key=next(keys), table_id=table, currency="EUR")
    wallets = []
    for user in ("a", "b"):
        wallet = account_open(client=tag, idempotency_key=next(keys), owner_ref=f"{tag}-{user}", currency="EUR")
        account_deposit(client=tag, idempotency_key=next(keys), account_id=wallet["account"]["id"], amount=10_000)
        wallets.append(wallet["account"]["id"])
    a, b = f"{tag}-a", f"{tag}-b"
    table_buy_in(client=tag, idempotency_key=next(keys), user_id=a, table_id=table, amount=1000)  # opens the seats
    table_buy_in(client=tag, idempotency_key=next(keys), user_id=b, table_id=table, amount=1000)
    hand_settle(
        client=tag,
        idempotency_key=next(keys),
        table_id=table,
        hand_id="warm",
        contributions={a: 10},
        payouts={b: 5},
        rake=5,
    )  # the table's rake shard exists
    calls = {
        "BuyIn": lambda: table_buy_in(client=tag, idempotency_key=next(keys), user_id=a, table_id=table, amount=100),
        "Reserve": lambda: reservation_reserve(
            client=tag, idempotency_key=next(keys), user_id=a, table_id=table, amount=100
        ),
        "SettleHand": lambda: hand_settle(
            client=tag,
            idempotency_key=next(keys),
            table_id=table,
            hand_id="h1",
            contributions={a: 50, b: 50},
            payouts={a: 95},
            rake=5,
        ),
        "CashOut": lambda: seat_cash_out(client=tag, idempotency_key=next(keys), table_id=table, user_id=b, amount=10),
        "Deposit": lambda: account_deposit(client=tag, idempotency_key=next(keys), account_id=wallets[0], amount=5),
        "Withdraw": lambda: account_withdraw(client=tag, idempotency_key=next(keys), account_id=wallets[0], amount=5),
        "Transfer": lambda: account_transfer(
            client=tag, idempotency_key=next(keys), from_account_id=wallets[0], to_account_id=wallets[1], amount=5
        ),
    }
    counts = {}
    for name, call in calls.items():
        with CaptureQueriesContext(connection) as queries:
            answer = call()
        counts[name] = len(queries.captured_queries)
        if name == "Reserve":
            reservation = answer["reservation"]["id"]
            with CaptureQueriesContext(connection) as queries:
                reservation_commit(client=tag, idempotency_key=next(keys), reservation_id=reservation, whole=True)
            counts["CommitReservation"] = len(queries.captured_queries)
            held = reservation_reserve(client=tag, idempotency_key=next(keys), user_id=a, table_id=table, amount=100)
            with CaptureQueriesContext(connection) as queries:
                reservation_release(client=tag, idempotency_key=next(keys), reservation_id=held["reservation"]["id"])
            counts["ReleaseReservation"] = len(queries.captured_queries)
    return counts


def http_rates(url: str, env: dict[str, str], seconds: int) -> str:
    out = run([sys.executable, "bench/http_load.py", "--seconds", str(seconds)], env=deployment(url, env))
    return "\n".join(line for line in out.splitlines() if line.startswith(("deposits", "transfers", "books")))


def report(name: str, mix: dict, tps: float) -> list[str]:
    closed, opened, floor = mix["closed"], mix["open"], mix["sequential"]
    lines = [
        f"{name}: closed loop {closed['rate']:.1f} calls/s ({closed['errors']} errors) = "
        f"{closed['rate'] / tps:.3f} x pgbench; server CPU {closed['cpu_ms']} ms/call"
        + database_note(closed["database_ms"]),
        f"  open loop at {mix['open_rate']:.0f}/s offered: served {opened['rate']:.1f}/s ({opened['errors']} "
        f"errors); server CPU {opened['cpu_ms']} ms/call",
        f"  {'method':<18} {'unloaded p50':>12} {'p50':>7} {'p95':>7} {'p99':>7} {'p99<50ms':>9} {'p99<5x p50':>11}",
    ]
    for method in METHODS:
        if method not in opened["methods"]:
            continue
        at_half, unloaded = opened["methods"][method], floor["methods"].get(method, {}).get("p50")
        within = "yes" if unloaded and at_half["p99"] < 5 * unloaded else "NO"
        lines.append(
            f"  {method:<18} {unloaded or 0:>12.1f} {at_half['p50']:>7.1f} {at_half['p95']:>7.1f} "
            f"{at_half['p99']:>7.1f} {'yes' if at_half['p99'] < 50 else 'NO':>9} {within:>11}"
        )
    return lines


def database_bound(database_ms: float, bare_ms: float, tps: float) -> str:
    """What the closed loop could reach if the sidecar cost no more than the floor's bare server:
    every core busy with PostgreSQL's work per call plus the floor's own server and caller CPU."""
    cores = os.cpu_count() or 1
    rate = cores * 1000 / (database_ms + bare_ms)
    return (
        f"  the database work per call bounds it: {cores} cores / ({database_ms:.2f} ms PostgreSQL + "
        f"{bare_ms:.2f} ms of the floor's server and caller) = {rate:.0f} calls/s = {rate / tps:.3f} x pgbench"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
        help="the PostgreSQL server (no database name; loopback only)",
    )
    parser.add_argument("--seconds", type=int, default=20, help="length of each timed phase (default %(default)s)")
    parser.add_argument("--compare-with", type=Path, help="another checkout of this repository, with its .venv")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-floor", action="store_true", help="leave out the bare grpcio + psycopg floor")
    args = parser.parse_args()
    if urllib.parse.urlsplit(args.pg).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this benchmark only runs against a PostgreSQL on loopback")
    if not 5 <= args.seconds <= 120:
        parser.error("--seconds must be 5 to 120")
    # Scratch databases: throwaway keys (settings refuse a configured database without keys of its
    # own), for the services started here and for the round trips counted in this process.
    throwaway_keys_setdefault(os.environ, purpose="bench")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}

    tps, tps_database_ms = pgbench(args.pg, args.seconds)
    print(
        f"pgbench TPC-B-like (scale 16, 16 clients, simple protocol, {args.seconds} s): {tps:.0f} tps"
        + database_note(tps_database_ms, "transaction"),
        flush=True,
    )
    bare = None
    if not args.skip_floor:
        import floor  # bench/floor.py

        url = fresh_database(args.pg, "balance_floor")
        floor.schema(url)
        bare, server_ms, caller_ms, database_ms = floor.floor(url, "lock-decide-write", args.seconds)
        print(
            f"floor, bare grpcio + psycopg in the service's shape (bench/floor.py): {bare:.1f} calls/s = "
            f"{bare / tps:.3f} x pgbench; server CPU {server_ms:.2f} ms/call, caller CPU {caller_ms:.2f} ms/call"
            + database_note(database_ms),
            flush=True,
        )
    ours = grpc_mix(sys.executable, REPO, fresh_database(args.pg, "balance_ceiling_grpc"), env, args.seconds)
    print("\n".join(report("this checkout", ours, tps)), flush=True)
    if bare:
        print(f"  closed loop over the floor: {ours['closed']['rate'] / bare:.2f}", flush=True)
        if ours["closed"]["database_ms"]:
            print(database_bound(ours["closed"]["database_ms"], server_ms + caller_ms, tps), flush=True)
    if args.compare_with:
        other = args.compare_with.resolve()
        theirs = grpc_mix(
            str(other / ".venv" / "bin" / "python"),
            other,
            fresh_database(args.pg, "balance_ceiling_compare"),
            env,
            args.seconds,
        )
        print("\n".join(report(f"{other} (compared)", theirs, tps)), flush=True)
        print(f"closed-loop ratio, this checkout / compared: {ours['closed']['rate'] / theirs['closed']['rate']:.2f}")
    trips = round_trips(fresh_database(args.pg, "balance_ceiling_trips"))
    print(
        "round trips per call (BEGIN and COMMIT included): "
        + ", ".join(f"{name} {count}" for name, count in trips.items()),
        flush=True,
    )
    if not args.skip_http:
        print("HTTP (bench/http_load.py, 8 threads, 32 wallets):")
        print(http_rates(fresh_database(args.pg, "balance_ceiling_http"), env, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
