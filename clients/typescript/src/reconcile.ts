/**
 * Where the poker side and the balance service disagree (the Python client's
 * `python -m balance_client.reconcile`, same rules). From the reconciliation log and its marks:
 *
 * - `divergence`: the poker side went ahead (let through) and the service refused it;
 * - `unknown`: still no answer from the service;
 * - `chips`: given the poker side's stacks (`{tableId: {userId: chips}}`), a seat whose chips in
 *   the service (GetTable, a read-only call) differ.
 *
 * With a client, the lines still unanswered are first resent with their own keys (a same-key retry
 * learns the outcome without applying anything twice), as the outbox would. Operations the poker
 * side held back (enforce, pending) and the service then did are `resolved`: the outbox told it.
 */
import type { BalanceClient } from "./client.js";
import { SeatStatus } from "./gen/balance/v1/balance_pb.js";
import { letThroughOf } from "./reconciliation.js";
import type { ReconciliationLog } from "./reconciliation.js";
import { replay } from "./replay.js";

export interface Disagreement {
  kind: "divergence" | "unknown" | "chips";
  detail: string;
}

export interface ReconcileReport {
  disagreements: Disagreement[];
  resolved: string[];
  agreed: number;
}

export async function reconcile(log: ReconciliationLog, client?: BalanceClient,
                                books?: Readonly<Record<string, Readonly<Record<string, bigint>>>>,
                                options: { timeoutMs?: number } = {}): Promise<ReconcileReport> {
  if (client !== undefined) {
    await replay(log, client, { timeoutMs: options.timeoutMs, onDivergence: () => undefined });
  }
  const report: ReconcileReport = { disagreements: [], resolved: [], agreed: 0 };
  const marks = await log.marks();
  for (const entry of await log.entries()) {
    const line = `${entry.operation} key=${entry.idempotency_key}`;
    const mark = marks.get(entry.id);
    if (mark === undefined) {
      report.disagreements.push({ kind: "unknown", detail: `${line}: no answer from the service yet` });
    } else if (mark.outcome === "refused" && letThroughOf(entry)) {
      report.disagreements.push({ kind: "divergence",
                                  detail: `${line}: let through by the poker side, refused (${mark.reason})` });
    } else if (mark.outcome === "ok" && !letThroughOf(entry)) {
      report.resolved.push(`${line}: held as pending by the poker side, done by the service`);
    } else {
      report.agreed += 1;
    }
  }
  if (books !== undefined) {
    if (client === undefined) {
      throw new TypeError("comparing the books needs the service (a client)");
    }
    for (const [tableId, stacks] of Object.entries(books)) {
      const table = (await client.getTable({ tableId }, options)).table;
      const service = new Map((table?.seats ?? []).filter((seat) => seat.status === SeatStatus.ACTIVE)
        .map((seat) => [seat.userId, seat.chips]));
      for (const user of [...new Set([...Object.keys(stacks), ...service.keys()])].sort()) {
        const poker = stacks[user] ?? 0n;
        const balance = service.get(user) ?? 0n;
        if (poker !== balance) {
          report.disagreements.push({ kind: "chips",
                                      detail: `table ${tableId} ${user}: poker side ${poker}, service ${balance}` });
        }
      }
    }
  }
  return report;
}
