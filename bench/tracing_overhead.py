"""What tracing costs a gRPC call, measured in process: the same calls with tracing off and on.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/balance_bench REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python bench/tracing_overhead.py [--calls 400] [--rounds 3]

The parent migrates the database the environment selects, creates a token and a funded wallet, and
runs an OTLP/HTTP receiver that accepts every export. Each round starts one child process per mode,
off then on: off has no OTEL_* variable; on has OTEL_EXPORTER_OTLP_ENDPOINT at the receiver, so the
batch exporter's thread really encodes and posts every span, as in production. A child calls
``tracing.setup`` as the sidecar does, starts an in-process server (``create_server``, port 0), then
times ``--calls`` GetBalance and ``--calls`` OpenTable through ``balance_client``, one at a time
after a warm-up, and prints the median and mean of each. A figure, not a test: on a shared machine
read the differences within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from balance_project.secrecy import throwaway_keys_setdefault  # noqa: E402

throwaway_keys_setdefault(os.environ, purpose="bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")


def child(token: str, account_id: int, calls: int) -> None:
    import django

    django.setup()
    from django.db import connections

    from balance_client import BalanceClient
    from balance_project import tracing
    from balance_project.grpc.server import create_server

    on = tracing.setup("grpc")  # what serve() does first
    connections["default"].settings_dict["CONN_MAX_AGE"] = 600  # as the sidecar keeps them
    running = create_server(bind="127.0.0.1:0", max_workers=4)
    running.start()
    run = uuid.uuid4().hex[:8]
    with BalanceClient(running.address, token) as client:
        for i in range(50):  # warm-up: connections, caches, the key cache
            client.get_balance(account_id=account_id)
            client.open_table(table_id=f"warm-{run}-{i}", currency="EUR")
        timings: dict[str, list[float]] = {"GetBalance": [], "OpenTable": []}
        # CPU of the whole process (client, server, exporter thread): steadier than wall time when
        # other work shares the cores, and where tracing's cost lands.
        cpu_started = time.process_time()
        for i in range(calls):
            started = time.perf_counter()
            client.get_balance(account_id=account_id)
            timings["GetBalance"].append(time.perf_counter() - started)
            started = time.perf_counter()
            client.open_table(table_id=f"t-{run}-{i}", currency="EUR")
            timings["OpenTable"].append(time.perf_counter() - started)
        if on:  # the spans still queued: their export is part of the cost
            from opentelemetry import trace

            trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
        cpu_per_pair = (time.process_time() - cpu_started) / calls
    running.stop(grace=None)
    print(
        json.dumps(
            {
                "on": on,
                "cpu_us_per_pair": cpu_per_pair * 1e6,
                **{
                    name: {"p50_us": statistics.median(t) * 1e6, "mean_us": statistics.fmean(t) * 1e6}
                    for name, t in timings.items()
                },
            }
        )
    )


class Receiver(BaseHTTPRequestHandler):
    spans_bytes = 0

    def do_POST(self):
        Receiver.spans_bytes += len(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.calls)
        return

    import django

    django.setup()
    from django.core.management import call_command

    from accounts.keys import api_key_create
    from accounts.services import account_deposit, account_open

    call_command("migrate", verbosity=0, interactive=False)
    token, _ = api_key_create(client="tracing-bench", scopes=["accounts:read", "tables:write"])
    account_id = account_open(
        client="bench",
        idempotency_key=f"open-{uuid.uuid4().hex}",
        owner_ref=f"bench-{uuid.uuid4().hex[:8]}",
        currency="EUR",
    )["account"]["id"]
    account_deposit(client="bench", idempotency_key=f"dep-{uuid.uuid4().hex}", account_id=account_id, amount=10_000)

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    envs = {"off": base, "on": {**base, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}"}}
    results: dict[str, list[dict]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode, env in envs.items():
            done = subprocess.run(
                [sys.executable, __file__, "--calls", str(args.calls), "--child", token, str(account_id)],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["on"] == (mode == "on"), result
            results[mode].append(result)
            print(mode, json.dumps({k: v for k, v in result.items() if k != "on"}), flush=True)
    receiver.shutdown()
    print(f"exported: {Receiver.spans_bytes} bytes of OTLP")
    off = statistics.median(r["cpu_us_per_pair"] for r in results["off"])
    on = statistics.median(r["cpu_us_per_pair"] for r in results["on"])
    print(f"CPU per GetBalance + OpenTable pair: off {off:.0f} us, on {on:.0f} us, difference {on - off:+.0f} us")
    for method in ("GetBalance", "OpenTable"):
        off = statistics.median(r[method]["p50_us"] for r in results["off"])
        on = statistics.median(r[method]["p50_us"] for r in results["on"])
        print(f"{method}: p50 off {off:.0f} us, on {on:.0f} us, difference {on - off:+.0f} us ({(on / off - 1):+.0%})")


if __name__ == "__main__":
    main()
