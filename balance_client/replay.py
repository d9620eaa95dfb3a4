"""Replay a reconciliation log against the balance service, idempotently.

    python -m balance_client.replay LOG --target host:port --token TOKEN

Each pending line is sent again with its own idempotency key, in log order. A line the service
answered (done, or refused on its merits) is marked in ``LOG.replayed`` and never sent again, so a
second replay does nothing new. The replay stops at the first line the service still cannot take
(later lines may depend on it: a settlement needs its buy-in). Exit status: 0 nothing left to do;
1 lines still pending (service unreachable); 2 some lines were refused (they need a person).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from balance_client.client import BalanceClient
from balance_client.errors import BalanceError
from balance_client.reconciliation import ReconciliationLog

# The operations a gate may log, and the client method that replays each.
REPLAYABLE = frozenset(
    {
        "buy_in",
        "settle_hand",
        "cash_out",
        "reserve",
        "commit_reservation",
        "release_reservation",
        "open_table",
        "close_table",
    }
)


@dataclass
class ReplayReport:
    replayed: int = 0
    already_done: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0

    @property
    def exit_status(self) -> int:
        return 1 if self.pending else (2 if self.refused else 0)

    def summary(self) -> str:
        return (
            f"replayed {self.replayed}, already done {self.already_done}, refused {len(self.refused)}, "
            f"pending {self.pending}"
        )


def replay(log: ReconciliationLog, client: BalanceClient, *, timeout: float | None = None) -> ReplayReport:
    report = ReplayReport()
    done = log.marked_ids()
    entries = list(log.entries())
    for index, entry in enumerate(entries):
        if entry["id"] in done:
            report.already_done += 1
            continue
        operation = entry.get("operation")
        if operation not in REPLAYABLE:
            log.mark(entry, outcome="refused", reason="unknown_operation")
            report.refused.append({**entry, "reason": "unknown_operation"})
            continue
        try:
            getattr(client, operation)(**entry["request"], idempotency_key=entry["idempotency_key"], timeout=timeout)
        except BalanceError as error:
            if error.unreachable:
                report.pending = len([e for e in entries[index:] if e["id"] not in done])
                return report
            log.mark(entry, outcome="refused", reason=error.reason or error.code.name)
            report.refused.append({**entry, "reason": error.reason or error.code.name, "message": error.message})
            continue
        log.mark(entry, outcome="ok")
        report.replayed += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m balance_client.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="the reconciliation log (JSON lines)")
    parser.add_argument("--target", required=True, help="host:port of the balance gRPC service")
    parser.add_argument(
        "--token", default=os.environ.get("BALANCE_GRPC_TOKEN"), help="service token (default: $BALANCE_GRPC_TOKEN)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call in seconds")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or $BALANCE_GRPC_TOKEN")
    with BalanceClient(args.target, args.token, timeout=args.timeout) as client:
        report = replay(ReconciliationLog(args.log), client)
    for entry in report.refused:
        print(f"refused: {entry['operation']} key={entry['idempotency_key']} reason={entry['reason']}", file=sys.stderr)
    print(report.summary())
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
