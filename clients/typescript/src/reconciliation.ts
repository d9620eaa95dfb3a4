/**
 * The reconciliation log: operations let through while the balance service could not be reached.
 *
 * One JSON object per line, the Python client's fields: `{"id", "time", "mode", "operation",
 * "request", "idempotency_key", "error"}`, where `request` is the request message in the protobuf
 * JSON mapping without its key (int64 as decimal strings, so no amount loses a unit). Replaying
 * (`balance-replay`) sends each line again with its own key, so a line that did reach the service
 * before is answered from the stored response, never applied twice. Replayed lines are marked in a
 * companion file `<log>.replayed` (`{"id", "idempotency_key", "outcome", "reason", "time"}` a line):
 * the log itself is only ever appended to, so the poker service may keep writing while a replay runs.
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";

import { toJson } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";

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
}

export interface ReplayMark {
  id: string;
  idempotency_key: string;
  outcome: "ok" | "refused";
  reason: string;
  time: string;
}

export interface AppendFields<O extends Operation> {
  operation: O;
  request: RequestOf<O>;
  mode: string;
  error: BalanceError | LoggedError;
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

  async mark(entry: LogEntry, outcome: ReplayMark["outcome"], reason = ""): Promise<void> {
    const mark: ReplayMark = { id: entry.id, idempotency_key: entry.idempotency_key, outcome, reason, time: now() };
    await appendLine(this.marksPath, mark);
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
