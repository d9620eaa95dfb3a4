"""The floor of this stack, against pgbench in the same run: how far a Python gRPC service with
nothing in it but a transfer can go on this machine.

    .venv/bin/python bench/floor.py [--seconds 15]

On one fresh database of the local PostgreSQL, in order:
1. pgbench TPC-B-like (scale 16, 16 clients, simple protocol), as bench/ceiling.py runs it;
2. a bare grpcio server (two processes sharing the port, 16 worker threads each, no interceptor,
   no Django, no Redis; requests and answers are raw bytes) whose one method moves 1 between two of
   10,000 accounts with psycopg, in one of two shapes:
   - ``one-trip``: one round trip, ``BEGIN; UPDATE; UPDATE; INSERT; COMMIT`` (pgbench's own shape);
   - ``lock-decide-write``: the service's shape, two round trips: ``BEGIN; SELECT ... FOR UPDATE``,
     a decision in Python (are the funds there?), then ``UPDATE; UPDATE; INSERT; COMMIT``;
   each driven by the same closed loop of 16 callers as bench/grpc_load.py (one Python process,
   grpcio's client), for ``--seconds``.
Prints each rate and its ratio to pgbench's tps, and the CPU per call of the server processes, of
the caller and of PostgreSQL. The service's own full mix (bench/ceiling.py) is read against these: whatever the
service spends above the floor is its own code; below it nothing on this stack can go.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import psycopg  # noqa: E402
from ceiling import fresh_database, pgbench  # noqa: E402

from bench.cpu import database_note, per_call_ms, postgres_cpu_seconds, process_cpu_seconds  # noqa: E402

ACCOUNTS = 10_000
METHOD = "/floor.Floor/Transfer"
SHAPES = ("one-trip", "lock-decide-write")


def schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE floor_account (id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));"
            "CREATE TABLE floor_history (id bigserial PRIMARY KEY, from_id bigint NOT NULL, to_id bigint NOT NULL,"
            " amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());"
        )
        conn.execute(f"INSERT INTO floor_account SELECT n, 1000000 FROM generate_series(1, {ACCOUNTS}) AS n")
        conn.execute("VACUUM ANALYZE floor_account")


def serve(url: str, shape: str, port: int, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    local = threading.local()

    def connection() -> psycopg.Connection:
        if getattr(local, "conn", None) is None:
            local.conn = psycopg.connect(url, autocommit=True)
        return local.conn

    def transfer(request: bytes, context) -> bytes:
        low, high = sorted(int(part) for part in request.split(b","))
        conn = connection()
        if shape == "one-trip":
            conn.execute(
                f"BEGIN; UPDATE floor_account SET balance = balance - 1 WHERE id = {low}; "
                f"UPDATE floor_account SET balance = balance + 1 WHERE id = {high}; "
                f"INSERT INTO floor_history (from_id, to_id, amount) VALUES ({low}, {high}, 1); COMMIT"
            )
            return b"ok"
        cursor = conn.cursor()
        cursor.execute(
            f"BEGIN; SELECT id, balance FROM floor_account WHERE id IN ({low}, {high}) ORDER BY id FOR UPDATE"
        )
        cursor.nextset()
        balances = dict(cursor.fetchall())
        if balances[low] < 1:
            conn.execute("ROLLBACK")
            return b"refused"
        conn.execute(
            f"UPDATE floor_account SET balance = {balances[low] - 1} WHERE id = {low}; "
            f"UPDATE floor_account SET balance = {balances[high] + 1} WHERE id = {high}; "
            f"INSERT INTO floor_history (from_id, to_id, amount) VALUES ({low}, {high}, 1); COMMIT"
        )
        return b"ok"

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 1)])
    handler = grpc.unary_unary_rpc_method_handler(transfer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("floor.Floor", {"Transfer": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


def closed_loop(port: int, seconds: float, callers: int = 16) -> int:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    call = channel.unary_unary(METHOD)
    for _ in range(50):  # every worker's connection exists before the clock starts
        call(b"1,2", timeout=10)
    counts = [0] * callers
    stop = time.monotonic() + seconds

    def caller(n: int) -> None:
        pick = random.Random(n)
        while time.monotonic() < stop:
            low, high = pick.sample(range(1, ACCOUNTS + 1), 2)
            call(f"{low},{high}".encode(), timeout=10)
            counts[n] += 1

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    return sum(counts)


def server_cpu_seconds(servers: list) -> float:
    return sum(process_cpu_seconds(p.pid) or 0.0 for p in servers)


def floor(url: str, shape: str, seconds: float) -> tuple[float, float, float, float | None]:
    """-> (calls/s, and the CPU ms per call of the server, of the caller and of PostgreSQL)"""
    port = random.randint(20_000, 40_000)
    context = multiprocessing.get_context("spawn")
    readies = [context.Event() for _ in range(2)]
    servers = [context.Process(target=serve, args=(url, shape, port, ready), daemon=True) for ready in readies]
    for process in servers:
        process.start()
    for ready in readies:
        ready.wait(20)
    try:
        server_before, database_before = server_cpu_seconds(servers), postgres_cpu_seconds()
        caller_before = time.process_time()
        started = time.monotonic()
        calls = closed_loop(port, seconds)
        elapsed = time.monotonic() - started
        server_cpu = server_cpu_seconds(servers) - server_before
        caller_cpu = time.process_time() - caller_before
        database_ms = per_call_ms(database_before, postgres_cpu_seconds(), calls)
    finally:
        for process in servers:
            process.terminate()
            process.join(10)
    return calls / elapsed, server_cpu * 1000 / calls, caller_cpu * 1000 / calls, database_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    if not 5 <= args.seconds <= 120:
        parser.error("--seconds must be 5 to 120")
    tps, tps_database_ms = pgbench(args.pg, args.seconds)
    print(
        f"pgbench TPC-B-like (scale 16, 16 clients, simple protocol, {args.seconds} s): {tps:.0f} tps"
        + database_note(tps_database_ms, "transaction"),
        flush=True,
    )
    for shape in SHAPES:
        url = fresh_database(args.pg, "balance_floor")
        schema(url)
        rate, server_ms, caller_ms, database_ms = floor(url, shape, args.seconds)
        print(
            f"bare grpcio + psycopg, {shape}: {rate:.1f} calls/s = {rate / tps:.3f} x pgbench; "
            f"server CPU {server_ms:.2f} ms/call, caller CPU {caller_ms:.2f} ms/call" + database_note(database_ms),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
