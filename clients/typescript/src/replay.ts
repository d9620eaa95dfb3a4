/**
 * Replaying a reconciliation log against the balance service, idempotently.
 *
 * Each pending line is sent again with its own idempotency key, in log order. A line the service
 * answered (done, or refused on its merits) is marked in `LOG.replayed` with the answer and never
 * sent again, so a second replay does nothing new. A refusal of a line the poker side had let
 * through is a divergence: reported to `onDivergence` (default: a warning) and marked so. The replay stops at the first line the service still cannot take
 * (later lines may depend on it: a settlement needs its buy-in). Exit status: 0 nothing left to do;
 * 1 lines still pending (service unreachable); 2 some lines were refused (they need a person).
 */
import { fromJson, toJson } from "@bufbuild/protobuf";
import type { DescMessage, JsonValue, MessageShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";

import type { BalanceClient } from "./client.js";
import { BalanceError } from "./errors.js";
import type { LogEntry, ReconciliationLog, ReplayMark } from "./reconciliation.js";
import { isOperation, OPERATIONS, requestSchema } from "./requests.js";
import type { RequestOf } from "./requests.js";

export interface ReplayOptions {
  /** Deadline of each call, in ms (default: the client's). */
  timeoutMs?: number | undefined;
  /** `performance.now()` by which the whole replay stops (what is left stays pending). */
  deadline?: number | undefined;
  /** Every line answered now, with its mark: how the poker side learns a pending operation's verdict. */
  onAnswer?: ((entry: LogEntry, mark: ReplayMark) => void) | undefined;
  onDivergence?: ((message: string) => void) | undefined;
}

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
                             options: ReplayOptions = {}): Promise<ReplayReport> {
  const report: ReplayReport = { replayed: 0, alreadyDone: 0, refused: [], pending: 0 };
  const done = await log.markedIds();
  const entries = await log.entries();
  const answered = (entry: LogEntry, mark: ReplayMark): void => {
    if (mark.divergence) {
      const message = `balance divergence: ${entry.operation} key=${entry.idempotency_key} was let through by the `
        + `poker side and refused by the balance service (${mark.reason}); the books disagree until a person settles it`;
      (options.onDivergence ?? console.warn)(message);
    }
    try {
      options.onAnswer?.(entry, mark);
    } catch (error) {
      console.error(`balance replay: onAnswer failed for key=${entry.idempotency_key}`, error);
    }
  };
  for (const [index, entry] of entries.entries()) {
    if (done.has(entry.id)) {
      report.alreadyDone += 1;
      continue;
    }
    const refuse = async (reason: string, message: string): Promise<void> => {
      answered(entry, await log.mark(entry, "refused", reason));
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
    let response: unknown;
    try {
      let timeoutMs = options.timeoutMs;
      if (options.deadline !== undefined) {
        const remaining = Math.floor(options.deadline - performance.now());
        timeoutMs = Math.min(timeoutMs ?? remaining, remaining);
      }
      if (timeoutMs !== undefined && timeoutMs < 1) {
        throw BalanceError.from({ code: Code.DeadlineExceeded, message: "the replay's deadline passed" });
      }
      response = await client.send(operation, request, { timeoutMs });
    } catch (thrown) {
      const error = BalanceError.fromCall(thrown);
      if (error.unreachable) {
        report.pending = entries.slice(index).filter((e) => !done.has(e.id)).length;
        return report;
      }
      await refuse(error.reason || error.status, error.serviceMessage);
      continue;
    }
    const schema = OPERATIONS[operation].output as DescMessage;
    answered(entry, await log.mark(entry, "ok", "", toJson(schema, response as MessageShape<DescMessage>)));
    report.replayed += 1;
  }
  return report;
}

/** Replays every `intervalMs` until nothing is pending (or `stop()`): the outbox as a loop. */
export async function follow(log: ReconciliationLog, client: BalanceClient,
                             options: ReplayOptions & { intervalMs: number; stop?: () => boolean }): Promise<ReplayReport> {
  for (;;) {
    const report = await replay(log, client, options);
    if (report.pending === 0 || options.stop?.()) {
      return report;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
