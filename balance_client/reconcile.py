"""Where the poker side and the balance service disagree.

    python -m balance_client.reconcile LOG [--target host:port --token TOKEN] [--books BOOKS.json]

From the reconciliation log (every operation the poker side has without the service's answer) and
its marks (the answers learned since), it reports:

- ``divergence``: the poker side went ahead (let through) and the service refused it;
- ``unknown``: still no answer from the service;
- ``chips``: with ``--books`` (``{"table id": {"user id": chips}}``, the poker side's stacks), a
  seat whose chips in the service (GetTable, a read-only call) differ from the poker side's.

With ``--target``, the lines still unanswered are first resent with their own keys (a same-key
retry learns the outcome without applying anything twice), as the outbox would. Operations the
poker side held back (enforce mode, pending) and the service then did are listed as ``resolved``:
the outbox's answer told the poker side. Exit status 0: no disagreement; 1: some.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client.client import BalanceClient
from balance_client.reconciliation import ReconciliationLog, let_through_of
from balance_client.replay import replay


@dataclass
class Disagreement:
    kind: str  # "divergence" | "unknown" | "chips"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class ReconcileReport:
    disagreements: list[Disagreement] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    agreed: int = 0

    @property
    def exit_status(self) -> int:
        return 1 if self.disagreements else 0


def reconcile(
    log: ReconciliationLog,
    client: BalanceClient | None = None,
    *,
    books: dict[str, dict[str, int]] | None = None,
) -> ReconcileReport:
    if client is not None:
        replay(log, client)
    report = ReconcileReport()
    marks = log.marks()
    for entry in log.entries():
        line = f"{entry['operation']} key={entry['idempotency_key']}"
        mark = marks.get(entry["id"])
        if mark is None:
            report.disagreements.append(Disagreement("unknown", f"{line}: no answer from the service yet"))
        elif mark["outcome"] == "refused" and let_through_of(entry):
            report.disagreements.append(
                Disagreement("divergence", f"{line}: let through by the poker side, refused ({mark['reason']})")
            )
        elif mark["outcome"] == "ok" and not let_through_of(entry):
            report.resolved.append(f"{line}: held as pending by the poker side, done by the service")
        else:
            report.agreed += 1
    if books:
        if client is None:
            raise ValueError("comparing the books needs the service (--target)")
        report.disagreements.extend(_compare_chips(client, books))
    return report


def _compare_chips(client: BalanceClient, books: dict[str, dict[str, int]]) -> list[Disagreement]:
    found = []
    for table_id, stacks in books.items():
        table = client.get_table(table_id=table_id).table
        service = {seat.user_id: seat.chips for seat in table.seats if seat.status == pb.SEAT_STATUS_ACTIVE}
        for user in sorted(set(stacks) | set(service)):
            poker, balance = int(stacks.get(user, 0)), service.get(user, 0)
            if poker != balance:
                found.append(Disagreement("chips", f"table {table_id} {user}: poker side {poker}, service {balance}"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m balance_client.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="the reconciliation log (JSON lines)")
    parser.add_argument("--target", help="host:port of the balance gRPC service: resend unanswered lines first")
    parser.add_argument(
        "--token", default=os.environ.get("BALANCE_GRPC_TOKEN"), help="service token (default: $BALANCE_GRPC_TOKEN)"
    )
    parser.add_argument("--books", help='the poker side\'s stacks, JSON {"table": {"user": chips}}')
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call in seconds")
    args = parser.parse_args(argv)
    books: dict[str, Any] | None = None
    if args.books:
        with open(args.books, encoding="utf-8") as handle:
            books = json.load(handle)
    if (args.target or books) and not (args.target and args.token):
        parser.error("--books and --target need a service: --target and a token (--token or $BALANCE_GRPC_TOKEN)")
    log = ReconciliationLog(args.log)
    if args.target:
        with BalanceClient(args.target, args.token, timeout=args.timeout) as client:
            report = reconcile(log, client, books=books)
    else:
        report = reconcile(log)
    for disagreement in report.disagreements:
        print(disagreement)
    for line in report.resolved:
        print(f"resolved: {line}")
    print(f"{len(report.disagreements)} disagreement(s), {len(report.resolved)} resolved, {report.agreed} agreed")
    return report.exit_status


if __name__ == "__main__":
    sys.exit(main())
