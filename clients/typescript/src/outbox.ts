/**
 * The outbox: the reconciliation log resent in the background until the service has answered every line.
 *
 *     const gate = new BalanceGate({ mode: "enforce", client, reconciliationLog: "balance-recon.jsonl" });
 *     gate.startOutbox({ intervalMs: 1000, onAnswer: (line, mark) => seats.resolve(line, mark) });
 *     ...
 *     await gate.stopOutbox();
 *
 * A line is sent with its own idempotency key, in log order, so an operation that had reached the
 * service is answered from its stored response and never applied twice; the answer is recorded in
 * the log's marks (with the response) and handed to `onAnswer`, which is how the poker side learns
 * the verdict of an operation it was told is pending. `balance-replay LOG --follow SECONDS` is the
 * same loop as a process. The outbox also knows which tables have lines still pending: an operation
 * on such a table is not sent ahead of them (a settlement may need a buy-in still in the log).
 */
import type { BalanceClient } from "./client.js";
import type { LogEntry, ReconciliationLog, ReplayMark } from "./reconciliation.js";
import { replay } from "./replay.js";
import type { ReplayReport } from "./replay.js";

export interface OutboxStartOptions {
  /** Pause between two passes while lines are pending, in ms (default 1000). */
  intervalMs?: number | undefined;
  onAnswer?: ((entry: LogEntry, mark: ReplayMark) => void) | undefined;
}

export class Outbox {
  readonly log: ReconciliationLog;
  private readonly client: BalanceClient;
  private readonly warn: (message: string) => void;
  private tables = new Set<string>();
  private loaded: Promise<void>;
  private draining: Promise<ReplayReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private onAnswer: ((entry: LogEntry, mark: ReplayMark) => void) | undefined;

  constructor(log: ReconciliationLog, client: BalanceClient, warn: (message: string) => void = console.warn) {
    this.log = log;
    this.client = client;
    this.warn = warn;
    this.loaded = this.refresh().catch(() => undefined);
  }

  /** Whether lines of this table wait for an answer (as this process last saw the log). */
  async holds(tableId: string): Promise<boolean> {
    await this.loaded;
    return tableId !== "" && this.tables.has(tableId);
  }

  /** A line was just appended: note its table and run a pass soon if the retrier is on. */
  added(entry: LogEntry): void {
    this.tables.add(tableOf(entry));
    this.addedDuringRefresh?.add(tableOf(entry));
    if (this.running && this.draining === undefined) {
      this.schedule(0);
    }
  }

  /** One pass over the pending lines, in order, by `deadline` (performance.now()); one pass at a time. */
  drain(deadline?: number): Promise<ReplayReport> {
    if (this.draining !== undefined) {
      return this.draining;
    }
    const pass = (async () => {
      try {
        return await replay(this.log, this.client, { deadline, onAnswer: this.onAnswer, onDivergence: this.warn });
      } finally {
        await this.refresh().catch(() => undefined);
        this.draining = undefined;
      }
    })();
    this.draining = pass;
    return pass;
  }

  /** Starts the background retrier (a timer; it does not keep the process alive). */
  start(options: OutboxStartOptions = {}): this {
    this.onAnswer = options.onAnswer ?? this.onAnswer;
    this.intervalMs = options.intervalMs ?? 1000;
    if (!this.running) {
      this.running = true;
      this.schedule(0);
    }
    return this;
  }

  /** Stops the retrier once the pass in flight (if any) ends. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.draining?.catch(() => undefined);
  }

  private intervalMs = 1000;

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (!this.running) {
      return;
    }
    try {
      await this.drain(performance.now() + Math.max(this.intervalMs, this.client.timeoutMs) * 4);
    } catch (error) {
      this.warn(`balance outbox: replay failed: ${String(error)}`);
    }
    if (this.running) {
      this.schedule(this.intervalMs);
    }
  }

  private addedDuringRefresh: Set<string> | undefined;

  private async refresh(): Promise<void> {
    // A line appended while the log is read may be missing from what is read: keep its table.
    const added = new Set<string>();
    this.addedDuringRefresh = added;
    try {
      this.tables = new Set([...(await this.log.pending()).map(tableOf), ...added]);
    } finally {
      this.addedDuringRefresh = undefined;
    }
  }
}

function tableOf(entry: LogEntry): string {
  const tableId = entry.request["tableId"];
  return typeof tableId === "string" ? tableId : "";
}
