/**
 * Replaying a reconciliation log against the balance service, idempotently.
 *
 * Each pending line is sent again with its own idempotency key, in log order. A line the service
 * answered (done, or refused on its merits) is marked in `LOG.replayed` and never sent again, so a
 * second replay does nothing new. The replay stops at the first line the service still cannot take
 * (later lines may depend on it: a settlement needs its buy-in). Exit status: 0 nothing left to do;
 * 1 lines still pending (service unreachable); 2 some lines were refused (they need a person).
 */
import { fromJson } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";

import type { BalanceClient } from "./client.js";
import { BalanceError } from "./errors.js";
import type { LogEntry, ReconciliationLog } from "./reconciliation.js";
import { isOperation, requestSchema } from "./requests.js";
import type { RequestOf } from "./requests.js";

export interface RefusedLine {
  entry: LogEntry;
  reason: string;
  message: string;
}

export interface ReplayReport {
  /** Lines sent and answered now (a line that had reached the service before counts here too). */
  replayed: number;
  /** Lines marked by an earlier replay. */
  alreadyDone: number;
  refused: RefusedLine[];
  /** Lines left for a later replay, the one that met the outage included. */
  pending: number;
}

export function exitStatus(report: ReplayReport): 0 | 1 | 2 {
  return report.pending > 0 ? 1 : report.refused.length > 0 ? 2 : 0;
}

export function summary(report: ReplayReport): string {
  return `replayed ${report.replayed}, already done ${report.alreadyDone}, refused ${report.refused.length}, `
    + `pending ${report.pending}`;
}

export async function replay(log: ReconciliationLog, client: BalanceClient,
                             options: { timeoutMs?: number } = {}): Promise<ReplayReport> {
  const report: ReplayReport = { replayed: 0, alreadyDone: 0, refused: [], pending: 0 };
  const done = await log.markedIds();
  const entries = await log.entries();
  for (const [index, entry] of entries.entries()) {
    if (done.has(entry.id)) {
      report.alreadyDone += 1;
      continue;
    }
    const refuse = async (reason: string, message: string): Promise<void> => {
      await log.mark(entry, "refused", reason);
      report.refused.push({ entry, reason, message });
    };
    const operation = entry.operation;
    if (!isOperation(operation)) {
      await refuse("unknown_operation", `cannot replay operation ${String(operation)}`);
      continue;
    }
    let request: RequestOf<typeof operation>;
    try {
      const json = { ...entry.request, idempotencyKey: entry.idempotency_key } as JsonValue;
      request = fromJson(requestSchema(operation), json) as RequestOf<typeof operation>;
    } catch (error) {
      await refuse("invalid_log_line", String(error));
      continue;
    }
    try {
      await client.send(operation, request, options);
    } catch (thrown) {
      const error = BalanceError.fromCall(thrown);
      if (error.unreachable) {
        report.pending = entries.slice(index).filter((e) => !done.has(e.id)).length;
        return report;
      }
      await refuse(error.reason || error.status, error.serviceMessage);
      continue;
    }
    await log.mark(entry, "ok");
    report.replayed += 1;
  }
  return report;
}
