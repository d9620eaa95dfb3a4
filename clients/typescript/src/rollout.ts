/**
 * Rolling the balance service in behind the poker tables: `off`, `shadow`, `enforce`.
 *
 * - `off`: no calls at all; every operation is allowed.
 * - `shadow`: the service is called and its verdict compared with the poker side's own
 *   (`expectedAllowed`); a disagreement is logged, but a seat is never blocked: an operation let
 *   through while the service was unreachable goes to the reconciliation log.
 * - `enforce`: the service decides. When it cannot be reached the operation is not allowed, unless
 *   `permissiveFallback` is on: then it is allowed and goes to the reconciliation log.
 *
 * An unreachable service is never reported as a refusal: the outcome is `pending` (the client has
 * already retried with the same key), and the operation is either queued for replay or left for the
 * caller to send again with the same key.
 */
import { Code } from "@connectrpc/connect";

import type { BalanceClient, CallOptions } from "./client.js";
import { BalanceError, UnreachableError } from "./errors.js";
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
  /** Appended to the reconciliation log, to be replayed with `balance-replay`. */
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
  /** Needed when operations may be let through: `shadow`, or `enforce` with the fallback. */
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
    if (this.letsThrough && this.reconciliationLog === undefined) {
      throw new TypeError("operations let through while the service is down need a reconciliation log");
    }
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
    const attempt = await this.attempt(operation, request, options);
    if (attempt.kind === "pending") {
      return this.pending(operation, request, attempt.error);
    }
    if (attempt.kind === "refused") {
      this.noteDisagreement(operation, key, expectedAllowed, attempt.error);
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

  /** What follows a pending outcome: let through and queued, or not allowed (never "refused"). */
  async pending<O extends Operation>(operation: O, request: RequestOf<O>,
                                     error: BalanceError): Promise<Decision<ResponseOf<O>>> {
    const key = request.idempotencyKey;
    const reason = error.reason || error.status;
    if (!this.letsThrough) {
      this.logger.warn(`balance ${operation} not allowed: service unreachable (${reason}), outcome pending; `
                       + `send it again with key=${key}`);
      return this.decision(false, "pending", key, { error });
    }
    const queued = (await this.queue(operation, request, error)) !== undefined;
    if (queued) {
      this.logger.warn(`balance ${operation} let through while the service is unreachable (${reason}); `
                       + `logged for reconciliation key=${key}`);
    }
    // Without its log line a let-through cannot be reconciled: only shadow mode (where the poker side's
    // books still decide) goes ahead without one.
    return this.decision(queued || this.mode === "shadow", "pending", key, { error, queued });
  }

  /** Appends a let-through operation to the reconciliation log; undefined if that failed. */
  async queue<O extends Operation>(operation: O, request: RequestOf<O>, error: BalanceError): Promise<LogEntry | undefined> {
    try {
      return await this.reconciliationLog?.append({ operation, request, mode: this.mode, error });
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
