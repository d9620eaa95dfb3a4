/**
 * Rolling the balance service in behind the poker tables: `off`, `shadow`, `enforce`.
 *
 * - `off`: no calls at all; every operation is allowed.
 * - `shadow`: the service is called and its verdict compared with the poker side's own
 *   (`expectedAllowed`); a disagreement is logged, but a seat is never blocked. What the poker side
 *   goes ahead with without the service's yes (no answer, or a refusal) goes to the reconciliation
 *   log, to be resent until answered: a later refusal of it is a divergence.
 * - `enforce`: the service decides. A definite refusal (the service answered) refuses. An unknown
 *   outcome is never a refusal: the outcome is `pending` (the client has already retried with the
 *   same key), the operation is queued in the reconciliation log, and it is not allowed yet (hold the
 *   seat and wait for the outbox's answer), or, with `permissiveFallback`, allowed.
 *
 * The log is the durable outbox (`startOutbox()`), and an operation on a table with lines still
 * pending is queued behind them rather than sent ahead. Contract: docs/clients.md.
 */
import { Code } from "@connectrpc/connect";

import type { BalanceClient, CallOptions } from "./client.js";
import { BalanceError, UnreachableError } from "./errors.js";
import { Outbox } from "./outbox.js";
import type { OutboxStartOptions } from "./outbox.js";
import type { BuyInResponse, CashOutResponse, SettleHandResponse } from "./gen/balance/v1/balance_pb.js";
import { ReconciliationLog } from "./reconciliation.js";
import type { LogEntry } from "./reconciliation.js";
import { buildRequest, defaultKey } from "./requests.js";
import type {
  BuyInFields, CashOutFields, Operation, OperationFields, RequestOf, ResponseOf, SettleHandFields,
} from "./requests.js";

export type RolloutMode = "off" | "shadow" | "enforce";
export const ROLLOUT_MODES: readonly RolloutMode[] = ["off", "shadow", "enforce"];

/** A feature flag's value as a mode (e.g. `process.env.BALANCE_ROLLOUT`); unset gives `fallback`. */
export function parseRolloutMode(value: string | undefined, fallback: RolloutMode = "off"): RolloutMode {
  if (value === undefined || value === "") {
    return fallback;
  }
  if (!(ROLLOUT_MODES as readonly string[]).includes(value)) {
    throw new RangeError(`rollout mode must be one of ${ROLLOUT_MODES.join(", ")}, got ${value}`);
  }
  return value as RolloutMode;
}

/**
 * - `skipped`: mode off, no call made.
 * - `ok`: the service did it.
 * - `refused`: the service said no, and nothing happened.
 * - `pending`: no verdict (unreachable after the client's retries): it may or may not have happened.
 */
export type Outcome = "skipped" | "ok" | "refused" | "pending";

export interface Decision<R = unknown> {
  /** What the poker side should do: go ahead with the operation or not. */
  readonly allowed: boolean;
  readonly mode: RolloutMode;
  readonly outcome: Outcome;
  /** The key it was sent with: send the same operation again with it to learn a pending outcome. */
  readonly idempotencyKey: string;
  /** The service's error code, or the status name when there was none; "" on success. */
  readonly reason: string;
  readonly response?: R | undefined;
  readonly error?: BalanceError | undefined;
  /** Appended to the reconciliation log (the outbox), to be resent until the service answers. */
  readonly queued: boolean;
}

export type Attempt<R> =
  | { kind: "ok"; response: R }
  | { kind: "refused"; error: BalanceError }
  | { kind: "pending"; error: BalanceError };

export interface GateLogger {
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

export interface BalanceGateOptions {
  mode: RolloutMode;
  /** Needed unless the mode is `off`. */
  client?: BalanceClient | undefined;
  permissiveFallback?: boolean | undefined;
  /** Needed unless the mode is `off`: what is let through or left pending is kept there (the outbox). */
  reconciliationLog?: ReconciliationLog | string | undefined;
  logger?: GateLogger | undefined;
}

export interface GateCallOptions extends CallOptions {
  idempotencyKey?: string | undefined;
  /** The poker side's own verdict, compared with the service's in shadow mode. */
  expectedAllowed?: boolean | undefined;
}

export class BalanceGate {
  readonly mode: RolloutMode;
  readonly permissiveFallback: boolean;
  readonly reconciliationLog: ReconciliationLog | undefined;
  readonly logger: GateLogger;
  /** Resends the log's lines until answered; undefined in mode off. */
  readonly outbox: Outbox | undefined;
  private readonly client: BalanceClient | undefined;

  constructor(options: BalanceGateOptions) {
    this.mode = parseRolloutMode(options.mode);
    this.client = options.client;
    this.permissiveFallback = options.permissiveFallback ?? false;
    this.reconciliationLog = typeof options.reconciliationLog === "string"
      ? new ReconciliationLog(options.reconciliationLog) : options.reconciliationLog;
    this.logger = options.logger ?? console;
    if (this.mode !== "off" && this.client === undefined) {
      throw new TypeError(`mode ${this.mode} needs a BalanceClient`);
    }
    if (this.mode !== "off" && this.reconciliationLog === undefined) {
      throw new TypeError("operations let through or left pending need a reconciliation log (the outbox)");
    }
    this.outbox = this.client !== undefined && this.reconciliationLog !== undefined
      ? new Outbox(this.reconciliationLog, this.client, (m) => this.logger.warn(m)) : undefined;
  }

  /** Resends the log's pending lines in the background; `onAnswer` gets each answer. */
  startOutbox(options: OutboxStartOptions = {}): Outbox {
    if (this.outbox === undefined) {
      throw new TypeError("mode off has no outbox");
    }
    return this.outbox.start(options);
  }

  async stopOutbox(): Promise<void> {
    await this.outbox?.stop();
  }

  /** Whether an operation is allowed while the service cannot be reached (and then queued). */
  get letsThrough(): boolean {
    return this.mode === "shadow" || (this.mode === "enforce" && this.permissiveFallback);
  }

  buyIn(fields: BuyInFields, options: GateCallOptions = {}): Promise<Decision<BuyInResponse>> {
    return this.decideFields("buy_in", fields, options);
  }

  settleHand(fields: SettleHandFields, options: GateCallOptions = {}): Promise<Decision<SettleHandResponse>> {
    return this.decideFields("settle_hand", fields, options);
  }

  cashOut(fields: CashOutFields, options: GateCallOptions = {}): Promise<Decision<CashOutResponse>> {
    return this.decideFields("cash_out", fields, options);
  }

  /** Any operation, from plain fields; in mode off nothing is built or sent. */
  decideFields<O extends Operation>(operation: O, fields: OperationFields[O],
                                    options: GateCallOptions = {}): Promise<Decision<ResponseOf<O>>> {
    if (this.mode === "off") {
      const key = options.idempotencyKey ?? defaultKey(operation, fields);
      return Promise.resolve(this.decision(true, "skipped", key));
    }
    return this.decide(operation, buildRequest(operation, fields, options.idempotencyKey), options);
  }

  /** Any operation, from its request message (its key included). */
  async decide<O extends Operation>(operation: O, request: RequestOf<O>,
                                    options: GateCallOptions = {}): Promise<Decision<ResponseOf<O>>> {
    const key = request.idempotencyKey;
    if (this.mode === "off") {
      return this.decision(true, "skipped", key);
    }
    const expectedAllowed = options.expectedAllowed ?? true;
    const started = performance.now();
    const behind = await this.waitBehind(request, options);
    if (behind !== undefined) {
      return this.pending(operation, request, behind);
    }
    // The drain of earlier lines and the call share one budget.
    const budgetMs = options.timeoutMs ?? this.requireClient().timeoutMs;
    const timeoutMs = Math.max(1, Math.floor(budgetMs - (performance.now() - started)));
    const attempt = await this.attempt(operation, request, { ...options, timeoutMs });
    if (attempt.kind === "pending") {
      return this.pending(operation, request, attempt.error);
    }
    if (attempt.kind === "refused") {
      this.noteDisagreement(operation, key, expectedAllowed, attempt.error);
      if (this.mode === "shadow" && expectedAllowed) {
        // The poker side goes ahead against the service's no: logged and resent, so a lasting refusal
        // is a divergence in the reconciliation report.
        const queued = (await this.queue(operation, request, attempt.error, true)) !== undefined;
        return this.decision(true, "refused", key, { error: attempt.error, queued });
      }
      return this.decision(this.mode === "shadow", "refused", key, { error: attempt.error });
    }
    this.noteDisagreement(operation, key, expectedAllowed);
    return this.decision(true, "ok", key, { response: attempt.response });
  }

  /** In shadow mode, logs a verdict of the service (a refusal when `error` is given) that differs from the poker side's. */
  noteDisagreement(operation: string, key: string, expectedAllowed: boolean, error?: BalanceError): void {
    if (this.mode !== "shadow") {
      return;
    }
    if (error !== undefined && expectedAllowed) {
      this.logger.warn(`balance shadow disagreement: ${operation} allowed by the poker side, refused by the `
                       + `balance service (${error.reason || error.status}: ${error.serviceMessage}) key=${key}`);
    } else if (error === undefined && !expectedAllowed) {
      this.logger.warn(`balance shadow disagreement: ${operation} refused by the poker side, allowed by the `
                       + `balance service key=${key}`);
    }
  }

  /** One call through the client, its failure sorted into a verdict or none; never throws. */
  async attempt<O extends Operation>(operation: O, request: RequestOf<O>,
                                     options: CallOptions = {}): Promise<Attempt<ResponseOf<O>>> {
    try {
      const response = await this.requireClient().send(operation, request, options);
      return { kind: "ok", response };
    } catch (thrown) {
      if (thrown instanceof BalanceError) {
        return thrown.unreachable ? { kind: "pending", error: thrown } : { kind: "refused", error: thrown };
      }
      // A bug on this side must not block a seat in shadow mode either; it is no verdict.
      this.logger.error(`balance ${operation} failed in the client`, thrown);
      return { kind: "pending", error: new UnreachableError({ code: Code.Unknown, message: String(thrown), cause: thrown }) };
    }
  }

  /**
   * Earlier lines of this request's table wait in the log: they go first (one pass within the
   * call's budget), or this one waits behind them. Returns the reason to wait, or undefined.
   */
  async waitBehind(request: { tableId?: string } | object, options: CallOptions = {}): Promise<BalanceError | undefined> {
    const tableId = "tableId" in request && typeof request.tableId === "string" ? request.tableId : "";
    if (this.outbox === undefined || !(await this.outbox.holds(tableId))) {
      return undefined;
    }
    const budgetMs = options.timeoutMs ?? this.requireClient().timeoutMs;
    // A pass already running (the retrier's) may last longer than this call may wait: wait no longer.
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<void>((resolve) => { timer = setTimeout(resolve, budgetMs); });
    try {
      const pass = this.outbox.drain(performance.now() + budgetMs).catch((error: unknown) => {
        this.logger.error("balance outbox: replay failed", error);
      });
      await Promise.race([pass, budget]);
    } finally {
      clearTimeout(timer);
    }
    if (!(await this.outbox.holds(tableId))) {
      return undefined;
    }
    return new UnreachableError({ code: Code.Unavailable, reason: "queued_behind",
                                  message: `queued behind earlier operations of table ${tableId} still pending` });
  }

  /** What follows a pending outcome: queued, and let through or held back (never "refused"). */
  async pending<O extends Operation>(operation: O, request: RequestOf<O>,
                                     error: BalanceError): Promise<Decision<ResponseOf<O>>> {
    const key = request.idempotencyKey;
    const reason = error.reason || error.status;
    if (!this.letsThrough) {
      const queued = (await this.queue(operation, request, error, false)) !== undefined;
      this.logger.warn(`balance ${operation} pending: no answer from the service (${reason}); `
                       + `${queued ? "queued for the outbox" : "NOT queued: send it again with"} key=${key}`);
      return this.decision(false, "pending", key, { error, queued });
    }
    const queued = (await this.queue(operation, request, error, true)) !== undefined;
    if (queued) {
      this.logger.warn(`balance ${operation} let through while the service is unreachable (${reason}); `
                       + `logged for reconciliation key=${key}`);
    }
    // Without its log line a let-through cannot be reconciled: only shadow mode (where the poker side's
    // books still decide) goes ahead without one.
    return this.decision(queued || this.mode === "shadow", "pending", key, { error, queued });
  }

  /** Appends an operation to the reconciliation log (the outbox); undefined if that failed. */
  async queue<O extends Operation>(operation: O, request: RequestOf<O>, error: BalanceError,
                                   letThrough = true): Promise<LogEntry | undefined> {
    try {
      const entry = await this.reconciliationLog?.append({ operation, request, mode: this.mode, error, letThrough });
      if (entry !== undefined) {
        this.outbox?.added(entry);
      }
      return entry;
    } catch (failure) {
      this.logger.error(`balance ${operation} could not be written to the reconciliation log `
                        + `key=${request.idempotencyKey}`, failure);
      return undefined;
    }
  }

  private requireClient(): BalanceClient {
    if (this.client === undefined) {
      throw new TypeError("no BalanceClient");
    }
    return this.client;
  }

  private decision<R>(allowed: boolean, outcome: Outcome, idempotencyKey: string,
                      extra: { response?: R; error?: BalanceError; queued?: boolean } = {}): Decision<R> {
    const reason = extra.error ? extra.error.reason || extra.error.status : "";
    return { allowed, mode: this.mode, outcome, idempotencyKey, reason, response: extra.response, error: extra.error,
             queued: extra.queued ?? false };
  }
}
