"""gRPC load benchmark: the buy-in / settle / cash-out mix against a real sidecar.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/balance_bench .venv/bin/python bench/grpc_load.py

Each table runs sessions back to back: two players buy in, three hands are settled, both cash out
(leave). Two phases, each bounded in time and in requests (and with ``--sequential N`` a first one
of N calls one at a time, the floor under both):
- closed loop: ``--clients`` (16) tables, each with one caller issuing its next call as soon as the
  last one answered: the throughput the service sustains;
- open loop: calls offered at a steady ``--rate`` (200/s) whatever the answers, latency measured from
  the moment each call was due (so a slow answer is not hidden by a late start).
Prints throughput and p50/p95/p99 per method. Starts its own ``manage.py grpcserver`` on a free
loopback port (unless ``--target`` names a loopback server already running) over the database the
environment selects, migrates it, and creates its own token, wallets and tables there.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from balance_project.secrecy import throwaway_keys_setdefault  # noqa: E402
from bench.cpu import per_call_ms, postgres_cpu_seconds, process_cpu_seconds  # noqa: E402

# A scratch database: throwaway keys unless the environment names some (balance_project/secrecy.py).
throwaway_keys_setdefault(os.environ, purpose="bench")

import grpc  # noqa: E402

from balance_client import BalanceClient, BalanceError, RetryPolicy  # noqa: E402
from balance_client.client import CHANNEL_OPTIONS  # noqa: E402

STAKE = 1_000
HANDS_PER_SESSION = 3
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter = collections.Counter()

    def record(self, method: str, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.errors[(method, error)] += 1
            else:
                self.latencies[method].append(seconds)

    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())

    def report(self, title: str, elapsed: float) -> str:
        lines = [
            f"{title}: {self.total()} calls in {elapsed:.1f} s = {self.total() / elapsed:.1f} calls/s "
            f"({sum(self.errors.values())} errors)",
            f"  {'method':<18} {'ok':>7} {'calls/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}",
        ]
        for method in ("BuyIn", "GetBalance", "Reserve", "CommitReservation", "SettleHand", "CashOut"):
            values = sorted(self.latencies.get(method, []))
            if not values:
                continue
            p50, p95, p99 = (values[min(len(values) - 1, int(q * len(values)))] * 1000 for q in (0.50, 0.95, 0.99))
            lines.append(
                f"  {method:<18} {len(values):>7} {len(values) / elapsed:>9.1f} {p50:>8.1f} "
                f"{p95:>8.1f} {p99:>8.1f} {values[-1] * 1000:>8.1f}"
            )
        for (method, error), count in sorted(self.errors.items()):
            lines.append(f"  error {method} {error}: {count}")
        return "\n".join(lines)


class Session:
    """One table's cycle: buy in both, settle HANDS_PER_SESSION hands, cash both out; then again.

    ``full``: also a GetBalance of the first player and a two-phase top-up (Reserve, then
    CommitReservation of that reservation) after the buy-ins, so every hot method is measured."""

    def __init__(self, table_id: str, players: tuple[str, str], full: bool = False):
        self.table_id, self.players = table_id, players
        self.step, self.cycle = 0, 0
        self.steps = (
            ["BuyIn", "BuyIn"]
            + (["GetBalance", "Reserve", "CommitReservation"] if full else [])
            + ["SettleHand"] * HANDS_PER_SESSION
            + ["CashOut", "CashOut"]
        )
        self.reservation_id = 0
        self.client: BalanceClient | None = None  # its own channel, when the run spreads over several

    def next_call(self, client: BalanceClient):
        """-> (method name, a function making the call); advances the cycle."""
        a, b = self.players
        step, self.step = self.step, (self.step + 1) % len(self.steps)
        if step == len(self.steps) - 1:
            self.cycle += 1
        method = self.steps[step]
        if method == "BuyIn":
            user = self.players[step]
            return method, lambda: client.buy_in(user_id=user, table_id=self.table_id, amount=STAKE)
        if method == "GetBalance":
            return method, lambda: client.get_balance(user_id=a, currency="EUR")
        if method == "Reserve":

            def reserve():
                self.reservation_id = client.reserve(user_id=a, table_id=self.table_id, amount=STAKE).reservation.id

            return method, reserve
        if method == "CommitReservation":
            return method, lambda: client.commit_reservation(reservation_id=self.reservation_id, whole=True)
        if method == "SettleHand":
            hand = f"h-{self.cycle}-{step}"
            winner, loser = (a, b) if step % 2 else (b, a)
            return method, lambda: client.settle_hand(
                table_id=self.table_id,
                hand_id=hand,
                contributions={winner: 50, loser: 50},
                payouts={winner: 95},
                rake=5,
            )
        user = self.players[len(self.steps) - 1 - step]
        return method, lambda: client.cash_out(table_id=self.table_id, user_id=user, leave=True)


def timed(stats: Stats, method: str, call, started: float) -> None:
    error = None
    try:
        call()
    except BalanceError as exc:
        error = exc.reason or exc.code.name
    stats.record(method, time.perf_counter() - started, error)


def warm_up(client: BalanceClient, sessions: list[Session]) -> None:
    """One whole cycle of each session, all at once: every channel, and every server worker thread
    with its database connection (whose first hot calls compile the PL/pgSQL), the steady state of
    a running sidecar; and caches and first seats."""

    def cycle(session: Session) -> None:
        for _ in range(len(session.steps)):
            session.next_call(session.client or client)[1]()

    with futures.ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        list(pool.map(cycle, sessions))


def sequential(client: BalanceClient, session: Session, calls: int) -> tuple[Stats, float]:
    """One caller, one call at a time: the latency of each method with nothing else running."""
    stats = Stats()
    started = time.perf_counter()
    for _ in range(calls):
        method, call = session.next_call(session.client or client)
        timed(stats, method, call, time.perf_counter())
    return stats, time.perf_counter() - started


def closed_loop(client: BalanceClient, sessions: list[Session], seconds: float, max_calls: int) -> tuple[Stats, float]:
    stats, stop_at = Stats(), time.perf_counter() + seconds
    per_client = max_calls // len(sessions)

    def run(session: Session) -> None:
        for _ in range(per_client):
            if time.perf_counter() >= stop_at:
                return
            method, call = session.next_call(session.client or client)
            timed(stats, method, call, time.perf_counter())

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats, time.perf_counter() - started


def open_loop(
    client: BalanceClient, sessions: list[Session], rate: float, seconds: float, max_calls: int
) -> tuple[Stats, float, int]:
    """Offer ``rate`` calls/s; a call is the next step of a table not busy with its previous call.
    Returns the stats, the elapsed time and how many due calls found every table busy (not sent)."""
    stats, idle = Stats(), queue.SimpleQueue()
    for session in sessions:
        idle.put(session)
    total = min(max_calls, int(rate * seconds))
    unsent = 0

    def run(session: Session, method: str, call, due: float) -> None:
        try:
            timed(stats, method, call, due)
        finally:
            idle.put(session)

    started = time.perf_counter()
    with futures.ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        for n in range(total):
            due = started + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            try:
                session = idle.get_nowait()
            except queue.Empty:
                unsent += 1
                continue
            method, call = session.next_call(session.client or client)
            pool.submit(run, session, method, call, due)
    return stats, time.perf_counter() - started, unsent


def prepare(tables: int, tag: str, full: bool = False) -> tuple[str, list[Session]]:
    """Token, funded wallets and open tables, written straight through the services."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")
    import django

    django.setup()
    from accounts.keys import api_key_create
    from accounts.services import account_deposit, account_open
    from tables.services import table_open

    token, _ = api_key_create(client=f"bench-{tag}", scopes=["accounts:read", "reservations:write", "tables:write"])
    sessions = []
    for n in range(tables):
        table_id = f"bench-{tag}-t{n}"
        table_open(client="bench", idempotency_key=f"{table_id}-open", table_id=table_id, currency="EUR")
        players = []
        for seat in range(2):
            user = f"bench-{tag}-t{n}-p{seat}"
            wallet = account_open(client="bench", idempotency_key=f"{user}-open", owner_ref=user, currency="EUR")
            account_deposit(
                client="bench", idempotency_key=f"{user}-fund", account_id=wallet["account"]["id"], amount=10**12
            )
            players.append(user)
        sessions.append(Session(table_id, tuple(players), full=full))
    from django.db import connections

    connections.close_all()
    return token, sessions


def cpu_note(pid: int | None, before: tuple[float | None, float | None, float], calls: int) -> str:
    """The server's CPU per call over a phase, PostgreSQL's (all its processes, when local), and this
    caller's own: all three share the machine's cores, as pgbench and its C client do."""
    server = per_call_ms(before[0], process_cpu_seconds(pid), calls)
    database = per_call_ms(before[1], postgres_cpu_seconds(), calls)
    caller = per_call_ms(before[2], caller_cpu_seconds(), calls)
    notes = [f"  server CPU (all its processes): {server:.2f} ms per call"] if server is not None else []
    if database is not None:
        notes.append(f"  PostgreSQL CPU (all its processes): {database:.2f} ms per call")
    if caller is not None:
        notes.append(f"  caller CPU (this process): {caller:.2f} ms per call")
    return "\n".join(notes)


def caller_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def cpu_now(pid: int | None) -> tuple[float | None, float | None, float]:
    return process_cpu_seconds(pid), postgres_cpu_seconds(), caller_cpu_seconds()


def start_server(workers: int, processes: int = 1) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "grpcserver",
            "--bind",
            "127.0.0.1:0",
            "--metrics-port",
            "0",
            "--max-workers",
            str(workers),
            "--processes",
            str(processes),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"the gRPC server did not start: {line!r}")
    return process, match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="a running server on loopback (default: start one)")
    parser.add_argument("--token", help="its token (with --target)")
    parser.add_argument("--workers", type=int, default=16, help="server worker threads (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=1, help="server processes (default: %(default)s)")
    parser.add_argument(
        "--mix",
        choices=("table", "full"),
        default="table",
        help="table: BuyIn/SettleHand/CashOut; full: also GetBalance, Reserve, CommitReservation",
    )
    parser.add_argument(
        "--channels",
        type=int,
        default=8,
        help="client connections the tables are spread over; SO_REUSEPORT balances "
        "connections, not calls, across --processes (default: %(default)s)",
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=0,
        metavar="N",
        help="first, N calls one at a time on one table: each method's latency unloaded",
    )
    parser.add_argument("--skip-closed", action="store_true", help="run the open loop only")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop callers (default: %(default)s)")
    parser.add_argument("--closed-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop offered calls/s (default: %(default)s)")
    parser.add_argument("--open-seconds", type=float, default=20.0)
    parser.add_argument("--open-tables", type=int, default=64, help="tables the open loop spreads over")
    parser.add_argument("--max-calls", type=int, default=20_000, help="cap per phase (default: %(default)s)")
    args = parser.parse_args()
    if args.target and not LOOPBACK.match(args.target):
        parser.error("this benchmark only sends traffic to a loopback address")
    if args.closed_seconds > 120 or args.open_seconds > 120 or args.rate > 5_000:
        parser.error("keep runs bounded: at most 120 s per phase and 5000 calls/s")

    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, check=True)
    tag = uuid.uuid4().hex[:8]
    token, sessions = prepare(args.clients + args.open_tables, tag, full=args.mix == "full")
    token = args.token or token
    from django.db import connection

    print(
        f"database: {connection.vendor}; server processes: {args.processes}, workers: {args.workers}; "
        f"tables: {len(sessions)}; mix: {args.mix}"
    )
    process, target = (None, args.target) if args.target else start_server(args.workers, args.processes)
    try:
        channels = [
            grpc.insecure_channel(target, options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
            for _ in range(max(1, args.channels))
        ]
        clients = [
            BalanceClient(target, token, timeout=10.0, retry=RetryPolicy(max_attempts=1), channel=channel)
            for channel in channels
        ]
        for n, session in enumerate(sessions):
            session.client = clients[n % len(clients)]
        with contextlib.ExitStack() as stack:
            for each in clients:
                stack.enter_context(each)
            client = clients[0]
            warm_up(client, sessions[: max(len(clients), args.workers * args.processes)])
            pid = process.pid if process is not None else None
            if args.sequential:
                stats, elapsed = sequential(client, sessions[0], min(args.sequential, args.max_calls))
                print(stats.report("sequential, one call at a time", elapsed))
            if not args.skip_closed:
                cpu = cpu_now(pid)
                stats, elapsed = closed_loop(client, sessions[: args.clients], args.closed_seconds, args.max_calls)
                print(stats.report(f"closed loop, {args.clients} concurrent clients", elapsed))
                print(cpu_note(pid, cpu, stats.total()))
            cpu = cpu_now(pid)
            stats, elapsed, unsent = open_loop(
                client, sessions[args.clients :], args.rate, args.open_seconds, args.max_calls
            )
            print(stats.report(f"open loop, {args.rate:.0f} calls/s offered", elapsed))
            print(f"  due calls not sent because every table was busy: {unsent}")
            print(cpu_note(pid, cpu, stats.total()))
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
