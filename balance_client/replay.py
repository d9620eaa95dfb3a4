"""Replay a reconciliation log against the balance service, idempotently.

    python -m balance_client.replay LOG --target host:port --token TOKEN [--follow SECONDS]

Each pending line is sent again with its own idempotency key, in log order. A line the service
answered (done, or refused on its merits) is marked in ``LOG.replayed`` with the answer and never
sent again, so a second replay does nothing new. A refusal of a line the poker side had let
through is a divergence: logged as such (logger ``balance_client.divergence``) and marked so. The
replay stops at the first line the service still cannot take (later lines may depend on it: a
settlement needs its buy-in). ``--follow`` is the outbox as a process: it replays again every
SECONDS until nothing is pending. Exit status: 0 nothing left to do; 1 lines still pending
(service unreachable); 2 some lines were refused (they need a person).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from balance_client.client import BalanceClient
from balance_client.errors import BalanceError
from balance_client.reconciliation import ReconciliationLog

divergence_log = logging.getLogger("balance_client.divergence")

# Called with (log line, its mark) for every line answered now.
OnAnswer = Callable[[dict[str, Any], dict[str, Any]], None]

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


def replay(
    log: ReconciliationLog,
    client: BalanceClient,
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    on_answer: OnAnswer | None = None,
) -> ReplayReport:
    """Sends the pending lines in order; ``deadline`` (time.monotonic()) bounds the whole replay."""
    report = ReplayReport()
    done = log.marked_ids()
    entries = list(log.entries())

    def answered(entry: dict[str, Any], mark: dict[str, Any]) -> None:
        if mark["divergence"]:
            divergence_log.warning(
                "balance divergence: %s key=%s was let through by the poker side and refused by the balance "
                "service (%s); the books disagree until a person settles it",
                entry["operation"],
                entry["idempotency_key"],
                mark["reason"],
            )
        if on_answer is not None:
            on_answer(entry, mark)

    for index, entry in enumerate(entries):
        if entry["id"] in done:
            report.already_done += 1
            continue
        operation = entry.get("operation")
        if operation not in REPLAYABLE:
            answered(entry, log.mark(entry, outcome="refused", reason="unknown_operation"))
            report.refused.append({**entry, "reason": "unknown_operation"})
            continue
        call_timeout = timeout
        if deadline is not None:
            remaining = deadline - time.monotonic()
            call_timeout = remaining if call_timeout is None else min(call_timeout, remaining)
        try:
            if call_timeout is not None and call_timeout <= 0:
                raise BalanceError(grpc.StatusCode.DEADLINE_EXCEEDED, "the replay's deadline passed")
            response = getattr(client, operation)(
                **entry["request"], idempotency_key=entry["idempotency_key"], timeout=call_timeout
            )
        except BalanceError as error:
            if error.unreachable:
                report.pending = len([e for e in entries[index:] if e["id"] not in done])
                return report
            answered(entry, log.mark(entry, outcome="refused", reason=error.reason or error.code.name))
            report.refused.append({**entry, "reason": error.reason or error.code.name, "message": error.message})
            continue
        answered(entry, log.mark(entry, outcome="ok", response=MessageToDict(response)))
        report.replayed += 1
    return report


def follow(
    log: ReconciliationLog,
    client: BalanceClient,
    *,
    interval: float,
    timeout: float | None = None,
    stop: Callable[[], bool] = lambda: False,
    on_answer: OnAnswer | None = None,
) -> ReplayReport:
    """Replays every ``interval`` seconds until nothing is pending (or ``stop()``): the outbox's loop."""
    while True:
        report = replay(log, client, timeout=timeout, on_answer=on_answer)
        if not report.pending or stop():
            return report
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m balance_client.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="the reconciliation log (JSON lines)")
    parser.add_argument("--target", required=True, help="host:port of the balance gRPC service")
    parser.add_argument(
        "--token", default=os.environ.get("BALANCE_GRPC_TOKEN"), help="service token (default: $BALANCE_GRPC_TOKEN)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call in seconds")
    parser.add_argument(
        "--follow", type=float, metavar="SECONDS", help="replay again every SECONDS until nothing is pending"
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or $BALANCE_GRPC_TOKEN")
    with BalanceClient(args.target, args.token, timeout=args.timeout) as client:
        log = ReconciliationLog(args.log)
        if args.follow:
            report = follow(log, client, interval=args.follow)
        else:
            report = replay(log, client)
    for entry in report.refused:
        print(f"refused: {entry['operation']} key={entry['idempotency_key']} reason={entry['reason']}", file=sys.stderr)
    print(report.summary())
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
