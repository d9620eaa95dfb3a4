/**
 * TableAdapter: the three places a poker table touches money, behind the rollout gate.
 *
 * - `joinSeat`: reserve the buy-in, let the poker side confirm the seat, then commit the hold into
 *   the seat, or release it when the seat falls through.
 * - `leaveSeat`: cash the seat out (everything) and close it.
 * - `settleShowdown`: one hand's settlement, rake included.
 *
 * Keys are `{operation}:{tableId}:{userId}:{stamp}` where the stamp is an id the poker side already
 * keeps (the seat session id, the hand id) instead of a timestamp: the same call after a retry, or
 * after the poker process restarted, sends the same keys and gets the first answers again, so money
 * moves once. A `sessionId` names one attempt to sit down: a new attempt needs a new one.
 */
import type { BalanceError } from "./errors.js";
import type { Reservation, Seat, CashOutResponse, SettleHandResponse } from "./gen/balance/v1/balance_pb.js";
import { buildRequest } from "./requests.js";
import type { Amount } from "./requests.js";
import { BalanceGate } from "./rollout.js";
import type { BalanceGateOptions, Decision, RolloutMode } from "./rollout.js";

export interface JoinSeatRequest {
  tableId: string;
  userId: string;
  /** The buy-in, committed whole into the seat. */
  amount: Amount;
  /** The poker side's id of this seat session, kept across its restarts. */
  sessionId: string;
  ttlSeconds?: number | undefined;
  /**
   * The poker side's last word on the seat, once the funds are held (`hold` is undefined when no
   * hold could be made: mode off, or the service refused or was unreachable in a mode that lets the
   * join through). True commits, false releases; a throw releases and is rethrown. Default: true.
   */
  confirm?: ((hold: Reservation | undefined) => boolean | Promise<boolean>) | undefined;
  /** The poker side's own verdict on the buy-in, compared with the service's in shadow mode. */
  expectedAllowed?: boolean | undefined;
}

/**
 * - `skipped`: mode off. `committed`: the buy-in is on the seat. `declined`: the poker side gave the
 *   seat up and the hold was released (or left to expire). `refused`: the service said no.
 * - `pending`: no verdict from the service. Queued for replay when the mode lets the join through,
 *   and, in enforce mode, a commit without an answer is queued for the outbox (its answer comes to
 *   `onAnswer`); a reserve without an answer is not (call joinSeat again with the same sessionId:
 *   a hold that was never committed expires by itself, no money moved to the seat).
 */
export type JoinOutcome = "skipped" | "committed" | "declined" | "refused" | "pending";

export interface JoinResult {
  /** Whether the poker side may seat the player. */
  seated: boolean;
  mode: RolloutMode;
  outcome: JoinOutcome;
  reason: string;
  reservation?: Reservation | undefined;
  seat?: Seat | undefined;
  queued: boolean;
  error?: BalanceError | undefined;
  keys: JoinKeys;
}

export interface JoinKeys {
  reserve: string;
  commit: string;
  release: string;
  /** The key of the buy-in queued when the reserve itself got no verdict. */
  buyIn: string;
}

export interface LeaveSeatRequest {
  tableId: string;
  userId: string;
  sessionId: string;
  expectedAllowed?: boolean | undefined;
}

export interface SettleShowdownRequest {
  tableId: string;
  handId: string;
  contributions: Readonly<Record<string, Amount>>;
  payouts: Readonly<Record<string, Amount>>;
  rake?: Amount | undefined;
  expectedAllowed?: boolean | undefined;
}

export function joinKeys(tableId: string, userId: string, sessionId: string): JoinKeys {
  const key = (operation: string): string => `${operation}:${tableId}:${userId}:${sessionId}`;
  return { reserve: key("reserve"), commit: key("commit_reservation"), release: key("release_reservation"),
           buyIn: key("buy_in") };
}

export class TableAdapter {
  readonly gate: BalanceGate;

  constructor(options: BalanceGateOptions | BalanceGate) {
    this.gate = options instanceof BalanceGate ? options : new BalanceGate(options);
  }

  get mode(): RolloutMode {
    return this.gate.mode;
  }

  async joinSeat(request: JoinSeatRequest): Promise<JoinResult> {
    const { tableId, userId } = request;
    const keys = joinKeys(tableId, userId, request.sessionId);
    const confirm = async (hold: Reservation | undefined): Promise<boolean> =>
      request.confirm === undefined ? true : await request.confirm(hold);
    const result = (seated: boolean, outcome: JoinOutcome, extra: Partial<JoinResult> = {}): JoinResult => ({
      seated, mode: this.gate.mode, outcome, reason: extra.error ? extra.error.reason || extra.error.status : "",
      queued: false, keys, ...extra,
    });
    if (this.gate.mode === "off") {
      const seated = await confirm(undefined);
      return result(seated, seated ? "skipped" : "declined");
    }
    const fields = { tableId, userId, amount: request.amount, ttlSeconds: request.ttlSeconds };
    const reserveRequest = buildRequest("reserve", fields, keys.reserve);
    // Earlier lines of this table still in the log go first, or the join waits behind them.
    const behind = await this.gate.waitBehind(reserveRequest);
    const reserved = behind === undefined ? await this.gate.attempt("reserve", reserveRequest)
      : { kind: "pending" as const, error: behind };

    if (reserved.kind === "refused") {
      if (this.gate.mode !== "shadow") {
        return result(false, "refused", { error: reserved.error });
      }
      this.gate.noteDisagreement("join_seat", keys.reserve, request.expectedAllowed ?? true, reserved.error);
      const seated = await confirm(undefined);
      // Seated against the service's no: the buy-in goes to the log, and a lasting refusal is a divergence.
      const queued = seated
        && (await this.gate.queue("buy_in", buildRequest("buy_in", fields, keys.buyIn), reserved.error, true)) !== undefined;
      return result(seated, seated ? "refused" : "declined", { error: reserved.error, queued });
    }
    if (reserved.kind === "pending") {
      if (!this.gate.letsThrough) {
        return result(false, "pending", { error: reserved.error });
      }
      if (!(await confirm(undefined))) {
        return result(false, "declined", { error: reserved.error });
      }
      // Queue the whole buy-in: a hold the unanswered reserve may have made expires by itself.
      const buyIn = buildRequest("buy_in", fields, keys.buyIn);
      const decision = await this.gate.pending("buy_in", buyIn, reserved.error);
      return result(decision.allowed, "pending", { error: reserved.error, queued: decision.queued });
    }

    const hold = reserved.response.reservation;
    let confirmed: boolean;
    try {
      confirmed = await confirm(hold);
    } catch (thrown) {
      await this.release(hold, keys.release);
      throw thrown;
    }
    if (!confirmed) {
      await this.release(hold, keys.release);
      return result(false, "declined", { reservation: hold });
    }
    const commitRequest = buildRequest("commit_reservation", { reservationId: hold?.id ?? 0n, all: true }, keys.commit);
    const committed = await this.gate.attempt("commit_reservation", commitRequest);
    if (committed.kind === "ok") {
      this.gate.noteDisagreement("join_seat", keys.commit, request.expectedAllowed ?? true);
      return result(true, "committed", { reservation: committed.response.reservation, seat: committed.response.seat });
    }
    if (committed.kind === "refused") {
      this.gate.noteDisagreement("join_seat", keys.commit, request.expectedAllowed ?? true, committed.error);
      const queued = this.gate.mode === "shadow"
        && (await this.gate.queue("commit_reservation", commitRequest, committed.error, true)) !== undefined;
      return result(this.gate.mode === "shadow", "refused", { reservation: hold, error: committed.error, queued });
    }
    // No verdict on the commit: queue the commit itself (a second buy-in could move the money twice).
    const decision = await this.gate.pending("commit_reservation", commitRequest, committed.error);
    return result(decision.allowed, "pending", { reservation: hold, error: committed.error, queued: decision.queued });
  }

  /** Cashes the whole seat out and closes it. */
  leaveSeat(request: LeaveSeatRequest): Promise<Decision<CashOutResponse>> {
    const { tableId, userId } = request;
    return this.gate.decideFields("cash_out", { tableId, userId, leave: true }, {
      idempotencyKey: `cash_out:${tableId}:${userId}:${request.sessionId}`, expectedAllowed: request.expectedAllowed,
    });
  }

  /** One hand: contributions must equal payouts plus rake. */
  settleShowdown(request: SettleShowdownRequest): Promise<Decision<SettleHandResponse>> {
    const { tableId, handId, contributions, payouts, rake } = request;
    return this.gate.decideFields("settle_hand", { tableId, handId, contributions, payouts, rake }, {
      idempotencyKey: `settle_hand:${tableId}:hand-${handId}:${handId}`, expectedAllowed: request.expectedAllowed,
    });
  }

  /** Drops a hold; if the service cannot take it now, the hold expires by itself. */
  private async release(hold: Reservation | undefined, key: string): Promise<void> {
    if (hold === undefined) {
      return;
    }
    const request = buildRequest("release_reservation", { reservationId: hold.id, reason: "seat not confirmed" }, key);
    const released = await this.gate.attempt("release_reservation", request);
    if (released.kind !== "ok") {
      this.gate.logger.warn(`balance release of reservation ${hold.id} failed (${released.error.reason || released.error.status}); `
                   + `it expires at ${hold.expiresAt}`);
    }
  }
}
