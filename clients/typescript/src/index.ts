/**
 * The poker service's client of the balance service (balance.v1 over gRPC).
 *
 *     const client = new BalanceClient({ target: "127.0.0.1:50051", token, timeoutMs: 2000 });
 *     const { seat } = await client.buyIn({ userId: "alice", tableId: "t1", amount: 5_000n });
 *
 * The generated messages are exported from "@balance/client/pb" (and re-exported here as `pb`).
 */
export { BalanceCache, DEFAULT_MAX_STALENESS_MS } from "./cache.js";
export type { BalanceRead } from "./cache.js";
export { BalanceClient } from "./client.js";
export type { BalanceClientOptions, CallOptions, MutationOptions, RetryEvent, WalletOrAccount } from "./client.js";
export { BalanceError, ERROR_DOMAIN, RefusedError, UnreachableError, isUnreachable, statusName } from "./errors.js";
export type { ErrorReason, StatusName } from "./errors.js";
export { idempotencyKey, uniqueTimestampNs } from "./keys.js";
export { Outbox } from "./outbox.js";
export type { OutboxStartOptions } from "./outbox.js";
export { reconcile } from "./reconcile.js";
export type { Disagreement, ReconcileReport } from "./reconcile.js";
export { letThroughOf, ReconciliationLog } from "./reconciliation.js";
export type { LogEntry, LoggedError, ReplayMark } from "./reconciliation.js";
export { exitStatus, follow, replay, summary } from "./replay.js";
export type { RefusedLine, ReplayOptions, ReplayReport } from "./replay.js";
export { buildRequest, defaultKey, OPERATIONS, toInt64 } from "./requests.js";
export type {
  Amount, BuyInFields, CashOutFields, CloseTableFields, CommitReservationFields, OpenTableFields, Operation,
  OperationFields, ReleaseReservationFields, RequestOf, ReserveFields, ResponseOf, SettleHandFields,
} from "./requests.js";
export { DEFAULT_RETRY_POLICY } from "./retry.js";
export type { RetryPolicy } from "./retry.js";
export { BalanceGate, parseRolloutMode, ROLLOUT_MODES } from "./rollout.js";
export type { Attempt, BalanceGateOptions, Decision, GateCallOptions, GateLogger, Outcome, RolloutMode } from "./rollout.js";
export { joinKeys, TableAdapter } from "./table.js";
export type { JoinKeys, JoinOutcome, JoinResult, JoinSeatRequest, LeaveSeatRequest, SettleShowdownRequest } from "./table.js";
export * as pb from "./pb.js";
