/**
 * The reconciliation log: every operation whose outcome the poker side does not have from the
 * service — let through while it could not be reached (shadow, permissive fallback), gone ahead with
 * though it refused (shadow), or left pending (enforce). It is the client's durable outbox: each line
 * is sent again with its own key until the service answers (`Outbox`, `balance-replay --follow`).
 *
 * One JSON object per line, the Python client's fields: `{"id", "time", "mode", "operation",
 * "request", "idempotency_key", "error", "let_through"}`, where `request` is the request message in
 * the protobuf JSON mapping without its key (int64 as decimal strings, so no amount loses a unit),
 * and `let_through` false means the poker side did not go ahead and waits for the answer (a line
 * without it was let through). Replaying sends each line again with its own key, so a line that did
 * reach the service before is answered from the stored response, never applied twice. Answered lines
 * are marked in a companion file `<log>.replayed` (`{"id", "idempotency_key", "outcome", "reason",
 * "time", "response", "let_through", "divergence"}` a line; `divergence`: let through, then
 * refused): the log itself is only ever appended to, so the poker service may keep writing while a
 * replay runs.
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";

import { toJson } from "@bufbuild/protobuf";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

import type { BalanceError } from "./errors.js";
import { requestSchema } from "./requests.js";
import type { Operation, RequestOf } from "./requests.js";

export interface LoggedError {
  code: string;
  reason: string;
  message: string;
}

export interface LogEntry {
  id: string;
  time: string;
  mode: string;
  operation: Operation | string;
  request: JsonObject;
  idempotency_key: string;
  error: LoggedError;
  /** False: the poker side held the operation back (pending); absent in older lines: true. */
  let_through?: boolean;
}

export interface ReplayMark {
  id: string;
  idempotency_key: string;
  outcome: "ok" | "refused";
  reason: string;
  time: string;
  /** The service's answer (protobuf JSON mapping) when `outcome` is ok. */
  response?: JsonValue | null;
  let_through?: boolean;
  /** Let through by the poker side and refused by the service: the books disagree. */
  divergence?: boolean;
}

export interface AppendFields<O extends Operation> {
  operation: O;
  request: RequestOf<O>;
  mode: string;
  error: BalanceError | LoggedError;
  /** Whether the poker side went ahead without the service's yes (default true). */
  letThrough?: boolean;
}

/** Whether the poker side went ahead with a logged operation (lines from before the field: yes). */
export function letThroughOf(entry: LogEntry): boolean {
  return entry.let_through ?? true;
}

export class ReconciliationLog {
  readonly path: string;
  readonly marksPath: string;

  constructor(path: string) {
    this.path = path;
    this.marksPath = `${path}.replayed`;
  }

  /** Appends one line and waits until it is on disk. */
  async append<O extends Operation>(fields: AppendFields<O>): Promise<LogEntry> {
    const json = toJson(requestSchema(fields.operation), fields.request) as JsonObject;
    const { idempotencyKey, ...request } = json;
    const error = "toJSON" in fields.error ? fields.error.toJSON() : fields.error;
    const entry: LogEntry = {
      id: randomUUID().replaceAll("-", ""), time: now(), mode: fields.mode, operation: fields.operation,
      request, idempotency_key: String(idempotencyKey ?? fields.request.idempotencyKey), error,
      let_through: fields.letThrough ?? true,
    };
    await appendLine(this.path, entry);
    return entry;
  }

  async entries(): Promise<LogEntry[]> {
    return (await readLines(this.path)).filter(isLogEntry);
  }

  async markedIds(): Promise<Set<string>> {
    return new Set((await readLines(this.marksPath)).map((mark) => String(mark["id"])));
  }

  /** The answer recorded for each answered line, by line id (the first, if marked twice). */
  async marks(): Promise<Map<string, ReplayMark>> {
    const recorded = new Map<string, ReplayMark>();
    for (const mark of await readLines(this.marksPath)) {
      const id = String(mark["id"]);
      if (!recorded.has(id)) {
        recorded.set(id, mark as unknown as ReplayMark);
      }
    }
    return recorded;
  }

  async mark(entry: LogEntry, outcome: ReplayMark["outcome"], reason = "",
             response: JsonValue | null = null): Promise<ReplayMark> {
    const letThrough = letThroughOf(entry);
    const mark: ReplayMark = { id: entry.id, idempotency_key: entry.idempotency_key, outcome, reason, time: now(),
                               response, let_through: letThrough, divergence: letThrough && outcome === "refused" };
    await appendLine(this.marksPath, mark);
    return mark;
  }

  /** The lines not replayed yet, in log order. */
  async pending(): Promise<LogEntry[]> {
    const done = await this.markedIds();
    return (await this.entries()).filter((entry) => !done.has(entry.id));
  }
}

function now(): string {
  return new Date().toISOString();
}

async function appendLine(path: string, record: object): Promise<void> {
  let data = `${JSON.stringify(record)}\n`;
  await mkdir(dirname(path), { recursive: true });
  // One write in append mode per line, then fsync: a line is whole and durable, or absent. Appends
  // from concurrent calls do not interleave (O_APPEND), so no lock is needed.
  const handle = await open(path, "a+", 0o600);
  try {
    const { size } = await handle.stat();
    if (size > 0) {
      // A crash mid-write left a torn line: end it, so this line is not glued onto it.
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        data = `\n${data}`;
      }
    }
    await handle.write(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readLines(path: string): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return [];
    }
    throw error;
  }
  const records: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      continue;
    }
    try {
      const record: unknown = JSON.parse(line);
      if (record !== null && typeof record === "object" && !Array.isArray(record)) {
        records.push(record as Record<string, unknown>);
      }
    } catch {
      // A torn last line from a crash mid-write: the operation it described was not logged whole.
    }
  }
  return records;
}

function isLogEntry(record: Record<string, unknown>): record is Record<string, unknown> & LogEntry {
  return typeof record["id"] === "string" && typeof record["operation"] === "string"
    && typeof record["idempotency_key"] === "string" && typeof record["request"] === "object";
}
