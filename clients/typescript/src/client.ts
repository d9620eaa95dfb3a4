/**
 * BalanceClient: typed calls to balance.v1.BalanceService with deadlines and safe retries.
 *
 * Every call has a deadline (`timeoutMs`, per call or the client's default) that covers all its
 * attempts, and may take an AbortSignal. UNAVAILABLE, ABORTED and DEADLINE_EXCEEDED are retried with
 * exponential backoff and full jitter, always with the same idempotency key, so a retry can never
 * apply an operation twice; ABORTED `idempotency_conflict` is final. A failure is thrown as a
 * RefusedError (the service's verdict) or an UnreachableError (no verdict: the outcome is unknown).
 * `readBalance` falls back to the last balance read (./cache.ts) when the service cannot be reached,
 * marked stale with its age, never older than `maxStalenessMs`.
 */
import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { BalanceCache, DEFAULT_MAX_STALENESS_MS, playersOf } from "./cache.js";
import type { BalanceRead } from "./cache.js";
import { BalanceError } from "./errors.js";
import {
  BalanceService,
  type CommitReservationResponse,
  type BuyInResponse,
  type CashOutResponse,
  type GetBalanceResponse,
  type ListTransactionsResponse,
  type ReservationResponse,
  type SettleHandResponse,
  type TableResponse,
} from "./gen/balance/v1/balance_pb.js";
import { buildRequest, OPERATIONS, toInt64 } from "./requests.js";
import type {
  Amount, BuyInFields, CashOutFields, CloseTableFields, CommitReservationFields, OpenTableFields, Operation,
  OperationFields, ReleaseReservationFields, RequestOf, ReserveFields, ResponseOf, SettleHandFields,
} from "./requests.js";
import { backoffMs, DEFAULT_RETRY_POLICY, isRetryable, sleep } from "./retry.js";
import type { RetryPolicy } from "./retry.js";

export interface BalanceClientOptions {
  /** `host:port` of the sidecar (plaintext HTTP/2), or a URL such as `http://127.0.0.1:50051`. */
  target: string;
  /** The service token: sent as `authorization: Bearer <token>` on every call. */
  token: string;
  /** Default deadline of a call, all attempts included, in ms (default 2000). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Another transport (tests use an in-memory one); the client then does not own a connection. */
  transport?: Transport;
  /** The jitter's source of randomness, [0, 1). */
  random?: () => number;
  /** Called before each retry (for logs and metrics); it must not throw. */
  onRetry?: (event: RetryEvent) => void;
  /** How old a cached balance `readBalance` may serve while the service is unreachable (default 5000; 0: none). */
  maxStalenessMs?: number;
}

export interface RetryEvent {
  /** The RPC's name, e.g. "BuyIn". */
  method: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  error: BalanceError;
  /** The pause before the next attempt. */
  pauseMs: number;
  /** The key every attempt carries ("" for reads). */
  idempotencyKey: string;
}

export interface CallOptions {
  /** The deadline of this call, all attempts included, in ms. */
  timeoutMs?: number | undefined;
  /** Abort the call: no further attempt is made, and the call fails CANCELLED (outcome unknown). */
  signal?: AbortSignal | undefined;
}

export interface MutationOptions extends CallOptions {
  /** Unless given, `{operation}:{tableId}:{userId}:{timestamp}`; every retry reuses it. */
  idempotencyKey?: string | undefined;
}

export type WalletOrAccount = { accountId: Amount } | { userId: string; currency: string };

// After a failed connection the next attempt dials again at once (connect-node's session manager
// keeps no reconnect backoff), so a retry finds a restarted sidecar; the client's own backoff
// spaces the attempts. An idle connection is closed after a minute and a dead one noticed by PING.
const SESSION_OPTIONS = { idleConnectionTimeoutMs: 60_000, pingIntervalMs: 30_000, pingTimeoutMs: 5_000 };

export class BalanceClient {
  readonly target: string;
  readonly timeoutMs: number;
  readonly retry: Readonly<RetryPolicy>;
  readonly balanceCache: BalanceCache;
  private readonly transport: Transport;
  private readonly session: Http2SessionManager | undefined;
  private readonly headers: Record<string, string>;
  private readonly random: () => number;
  private readonly onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(options: BalanceClientOptions) {
    this.target = options.target;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.retry = Object.freeze({ ...DEFAULT_RETRY_POLICY, ...options.retry });
    this.headers = { authorization: `Bearer ${options.token}` };
    this.random = options.random ?? Math.random;
    this.onRetry = options.onRetry;
    this.balanceCache = new BalanceCache(options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS);
    if (options.transport) {
      this.transport = options.transport;
      this.session = undefined;
    } else {
      const baseUrl = options.target.includes("://") ? options.target : `http://${options.target}`;
      this.session = new Http2SessionManager(baseUrl, SESSION_OPTIONS);
      this.transport = createGrpcTransport({ baseUrl, sessionManager: this.session });
    }
  }

  /** Closes the connection (calls in flight fail); the process may then exit. */
  close(): void {
    this.session?.abort();
  }

  // ---- reads ----------------------------------------------------------------------------------

  async getBalance(target: WalletOrAccount, options: CallOptions = {}): Promise<GetBalanceResponse> {
    const request = "accountId" in target
      ? { target: { case: "accountId" as const, value: toInt64(target.accountId, "accountId") } }
      : { target: { case: "wallet" as const, value: { userId: target.userId, currency: target.currency } } };
    const response = await this.invoke(BalanceService.method.getBalance, request, options);
    this.balanceCache.store(response);
    return response;
  }

  /**
   * The balance from the service; when it cannot be reached, the last one read if it is at most
   * `maxStalenessMs` old (`stale: true`, `ageMs`); else the error is thrown.
   */
  async readBalance(target: WalletOrAccount, options: CallOptions = {}): Promise<BalanceRead> {
    try {
      return { response: await this.getBalance(target, options), stale: false, ageMs: 0 };
    } catch (thrown) {
      const key = "accountId" in target ? { accountId: toInt64(target.accountId, "accountId") } : target;
      const cached = thrown instanceof BalanceError && thrown.unreachable ? this.balanceCache.lookup(key) : undefined;
      if (cached === undefined) {
        throw thrown;
      }
      return cached;
    }
  }

  async listTransactions(fields: { accountId: Amount; cursor?: string; limit?: number },
                   options: CallOptions = {}): Promise<ListTransactionsResponse> {
    const request = { accountId: toInt64(fields.accountId, "accountId"), cursor: fields.cursor ?? "",
                      limit: fields.limit ?? 0 };
    return this.invoke(BalanceService.method.listTransactions, request, options);
  }

  async getReservation(fields: { reservationId: Amount }, options: CallOptions = {}): Promise<ReservationResponse> {
    const request = { reservationId: toInt64(fields.reservationId, "reservationId") };
    return this.invoke(BalanceService.method.getReservation, request, options);
  }

  async getTable(fields: { tableId: string }, options: CallOptions = {}): Promise<TableResponse> {
    return this.invoke(BalanceService.method.getTable, { tableId: fields.tableId }, options);
  }

  // ---- mutations: the key is made once here and reused by every retry --------------------------

  reserve(fields: ReserveFields, options: MutationOptions = {}): Promise<ReservationResponse> {
    return this.mutate("reserve", fields, options);
  }

  commitReservation(fields: CommitReservationFields, options: MutationOptions = {}): Promise<CommitReservationResponse> {
    return this.mutate("commit_reservation", fields, options);
  }

  releaseReservation(fields: ReleaseReservationFields, options: MutationOptions = {}): Promise<ReservationResponse> {
    return this.mutate("release_reservation", fields, options);
  }

  openTable(fields: OpenTableFields, options: MutationOptions = {}): Promise<TableResponse> {
    return this.mutate("open_table", fields, options);
  }

  closeTable(fields: CloseTableFields, options: MutationOptions = {}): Promise<TableResponse> {
    return this.mutate("close_table", fields, options);
  }

  buyIn(fields: BuyInFields, options: MutationOptions = {}): Promise<BuyInResponse> {
    return this.mutate("buy_in", fields, options);
  }

  /** The default key's user slot holds `hand-<hand id>`: a settlement concerns the whole table. */
  settleHand(fields: SettleHandFields, options: MutationOptions = {}): Promise<SettleHandResponse> {
    return this.mutate("settle_hand", fields, options);
  }

  cashOut(fields: CashOutFields, options: MutationOptions = {}): Promise<CashOutResponse> {
    return this.mutate("cash_out", fields, options);
  }

  /** Sends a request message as it is (its key included): what the gate and the replay use. */
  send<O extends Operation>(operation: O, request: RequestOf<O>, options: CallOptions = {}): Promise<ResponseOf<O>> {
    const method = OPERATIONS[operation] as unknown as DescMethodUnary<DescMessage, DescMessage>;
    return this.invoke(method, request as MessageInitShape<DescMessage>, options) as Promise<ResponseOf<O>>;
  }

  // async, so that a bad amount rejects the promise like any other failure instead of throwing.
  private async mutate<O extends Operation>(operation: O, fields: OperationFields[O],
                                      options: MutationOptions): Promise<ResponseOf<O>> {
    return this.send(operation, buildRequest(operation, fields, options.idempotencyKey), options);
  }

  // ---- the one place calls are made -----------------------------------------------------------

  private async invoke<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>, request: MessageInitShape<I>, options: CallOptions,
  ): Promise<MessageShape<O>> {
    if (typeof (request as { idempotencyKey?: unknown }).idempotencyKey === "string") {
      // A mutation (whatever its outcome) makes its players' cached balances older than a change this
      // client could know of: they are not served again.
      this.balanceCache.forgetPlayers(playersOf(request));
    }
    const deadline = performance.now() + (options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining < 1) {
        throw BalanceError.from({ code: Code.DeadlineExceeded, attempts: attempt - 1,
                                  message: "the call's deadline passed before an answer" });
      }
      const attemptMs = Math.max(1, Math.floor(Math.min(remaining, this.retry.attemptTimeoutMs ?? Infinity)));
      try {
        const response = await this.transport.unary(method, signal, attemptMs, this.headers, request);
        return response.message;
      } catch (thrown) {
        const error = BalanceError.fromCall(thrown, attempt);
        if (signal?.aborted || attempt >= this.retry.maxAttempts || !isRetryable(error)) {
          throw error;
        }
        const pause = backoffMs(this.retry, attempt - 1, this.random);
        if (performance.now() + pause >= deadline - 1) {
          throw error;
        }
        const key = (request as { idempotencyKey?: unknown }).idempotencyKey;
        this.onRetry?.({ method: method.name, attempt, error, pauseMs: pause,
                         idempotencyKey: typeof key === "string" ? key : "" });
        try {
          await sleep(pause, signal);
        } catch (reason) {
          // Aborted while waiting: the last attempt's outcome is still unknown.
          throw BalanceError.fromCall(new ConnectError("the call was aborted", Code.Canceled, undefined, undefined,
                                                       reason), attempt);
        }
      }
    }
  }
}
