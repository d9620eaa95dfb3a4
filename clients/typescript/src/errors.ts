/**
 * What a failed call says: the gRPC status, and the google.rpc.ErrorInfo the service puts in its
 * status details (`reason` is the service's stable error code, `metadata` its details as strings).
 *
 * Two classes, so that code cannot mistake one for the other: a `RefusedError` is the service's
 * verdict on the request (it did not happen, for the reason given); an `UnreachableError` is no
 * verdict at all (the service was down, too slow, crashed or busy: the operation may or may not
 * have happened, and only a retry with the same idempotency key can tell).
 */
import { Code, ConnectError } from "@connectrpc/connect";

import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export const ERROR_DOMAIN = "balance.v1";

/** gRPC status names, as in the gRPC spec and docs/grpc.md. */
export type StatusName =
  | "CANCELLED" | "UNKNOWN" | "INVALID_ARGUMENT" | "DEADLINE_EXCEEDED" | "NOT_FOUND" | "ALREADY_EXISTS"
  | "PERMISSION_DENIED" | "RESOURCE_EXHAUSTED" | "FAILED_PRECONDITION" | "ABORTED" | "OUT_OF_RANGE"
  | "UNIMPLEMENTED" | "INTERNAL" | "UNAVAILABLE" | "DATA_LOSS" | "UNAUTHENTICATED";

const STATUS_NAMES: Record<number, StatusName> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

export function statusName(code: Code): StatusName {
  return STATUS_NAMES[code] ?? "UNKNOWN";
}

/** The service's error codes (balance_project/errors.py ERROR_TABLE) a gRPC caller can meet. */
export type ErrorReason =
  | "invalid_request" | "invalid_amount" | "idempotency_key_missing" | "idempotency_key_invalid"
  | "unauthenticated" | "permission_denied"
  | "not_found" | "account_not_found" | "reservation_not_found" | "table_not_found" | "seat_not_found"
  | "idempotency_conflict" | "idempotency_in_progress"
  | "reservation_not_pending" | "reservation_expired" | "hand_conflict" | "table_closed" | "table_not_empty"
  | "insufficient_funds" | "account_frozen" | "account_closed" | "currency_mismatch" | "settlement_invalid"
  | "player_not_seated" | "insufficient_chips" | "invalid_state" | "account_not_empty" | "account_not_wallet"
  | "deposit_limit_exceeded" | "loss_limit_exceeded" | "buy_in_limit_exceeded" | "deposit_too_large"
  | "self_excluded" | "transfers_disabled"
  | "rate_limited" | "unavailable" | "deadline_exceeded" | "internal_error";

// Answers that say nothing about the request: the service was not reached, or not to the end.
const UNREACHABLE_CODES: ReadonlySet<Code> = new Set([
  Code.Unavailable, Code.DeadlineExceeded, Code.Canceled, Code.Unknown, Code.Internal, Code.ResourceExhausted,
]);

// ABORTED is the service's verdict only with its reason (idempotency_conflict): without one it is
// the transport's (a stream reset while the answer was read), and the request may have been done.
export function isUnreachable(code: Code, reason: string): boolean {
  return UNREACHABLE_CODES.has(code) || reason === "idempotency_in_progress" || (code === Code.Aborted && !reason);
}

export interface ErrorFields {
  code: Code;
  message: string;
  /** The service's error code from ErrorInfo; "" when the answer carried none (e.g. not reached). */
  reason?: string;
  /** ErrorInfo metadata: the refusal's details, every value a string. */
  details?: Record<string, string>;
  attempts?: number;
  cause?: unknown;
}

/** A call that ended without an answer. Use `BalanceError.from` to make the right subclass. */
export abstract class BalanceError extends Error {
  readonly code: Code;
  readonly status: StatusName;
  /** `ErrorReason` when the service named one; typed as string so a newer service's codes pass through. */
  readonly reason: ErrorReason | (string & {});
  readonly details: Readonly<Record<string, string>>;
  /** How many attempts the call made (retries included) before this error. */
  readonly attempts: number;
  /** The message as the service wrote it (`message` adds the status and reason in front). */
  readonly serviceMessage: string;
  abstract readonly unreachable: boolean;

  constructor(fields: ErrorFields) {
    const status = statusName(fields.code);
    super(`${status}: ${fields.reason || "-"}: ${fields.message}`, { cause: fields.cause });
    this.code = fields.code;
    this.status = status;
    this.reason = fields.reason ?? "";
    this.details = Object.freeze({ ...(fields.details ?? {}) });
    this.attempts = fields.attempts ?? 1;
    this.serviceMessage = fields.message;
  }

  /** What the reconciliation log records of an error. */
  toJSON(): { code: StatusName; reason: string; message: string } {
    return { code: this.status, reason: this.reason, message: this.serviceMessage };
  }

  static from(fields: ErrorFields): BalanceError {
    return isUnreachable(fields.code, fields.reason ?? "") ? new UnreachableError(fields) : new RefusedError(fields);
  }

  /** Reads a ConnectError (or anything thrown by a call) into a BalanceError. */
  static fromCall(thrown: unknown, attempts = 1): BalanceError {
    if (thrown instanceof BalanceError) {
      return thrown;
    }
    const error = ConnectError.from(thrown);
    let reason = "";
    let details: Record<string, string> = {};
    for (const info of error.findDetails(ErrorInfoSchema)) {
      if (info.domain === ERROR_DOMAIN) {
        reason = info.reason;
        details = { ...info.metadata };
        break;
      }
    }
    return BalanceError.from({ code: error.code, message: error.rawMessage, reason, details, attempts, cause: thrown });
  }
}

/** The service answered: the request was refused and nothing happened. */
export class RefusedError extends BalanceError {
  override readonly name = "RefusedError";
  readonly unreachable = false;
}

/** No verdict: the operation may or may not have happened; retry it with the same idempotency key. */
export class UnreachableError extends BalanceError {
  override readonly name = "UnreachableError";
  readonly unreachable = true;
}
