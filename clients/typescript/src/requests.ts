/**
 * The mutating operations, by the names the keys and the reconciliation log use (`buy_in`, ...), and
 * how each request message is built from plain fields. Amounts are `bigint` or decimal strings and
 * become int64 exactly: a JS number is not accepted, since above 2^53 it silently loses units.
 */
import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";

import {
  BalanceService,
  BuyInRequestSchema,
  CashOutRequestSchema,
  CloseTableRequestSchema,
  CommitReservationRequestSchema,
  OpenTableRequestSchema,
  ReleaseReservationRequestSchema,
  ReserveRequestSchema,
  SettleHandRequestSchema,
} from "./gen/balance/v1/balance_pb.js";
import { idempotencyKey } from "./keys.js";

/** Minor units (cents): a bigint, or a string of decimal digits ("5000", "-20"). */
export type Amount = bigint | string;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** An Amount as int64, or a TypeError/RangeError naming the field. */
export function toInt64(value: Amount, field: string): bigint {
  let parsed: bigint;
  if (typeof value === "bigint") {
    parsed = value;
  } else if (typeof value === "string" && /^-?\d+$/.test(value)) {
    parsed = BigInt(value);
  } else {
    throw new TypeError(`${field} must be a bigint or a string of decimal digits, got ${typeof value} ${String(value)}`);
  }
  if (parsed < INT64_MIN || parsed > INT64_MAX) {
    throw new RangeError(`${field} is outside int64: ${parsed}`);
  }
  return parsed;
}

function toInt64Map(values: Readonly<Record<string, Amount>>, field: string): Record<string, bigint> {
  return Object.fromEntries(Object.entries(values).map(([user, amount]) => [user, toInt64(amount, `${field}.${user}`)]));
}

function optionalInt64(value: Amount | undefined, field: string): bigint | undefined {
  return value === undefined ? undefined : toInt64(value, field);
}

export interface ReserveFields {
  userId: string;
  tableId: string;
  amount: Amount;
  /** Unset: the server's default TTL. */
  ttlSeconds?: number | undefined;
}

export interface CommitReservationFields {
  reservationId: Amount;
  /** What to commit (the rest of the hold is released). Exactly one of `amount` and `all`. */
  amount?: Amount | undefined;
  /** Commit everything held: a missing amount never means "all". */
  all?: boolean | undefined;
  /** Only for the default key: `commit_reservation:{tableId or reservation-<id>}:{userId}:{timestamp}`. */
  tableId?: string | undefined;
  userId?: string | undefined;
}

export interface ReleaseReservationFields {
  reservationId: Amount;
  reason?: string | undefined;
  tableId?: string | undefined;
  userId?: string | undefined;
}

export interface OpenTableFields {
  tableId: string;
  currency: string;
}

export interface CloseTableFields {
  tableId: string;
}

export type BuyInFields = ReserveFields;

export interface SettleHandFields {
  tableId: string;
  handId: string;
  /** User id -> chips put into the pot. */
  contributions: Readonly<Record<string, Amount>>;
  /** User id -> chips won. Contributions must equal payouts plus rake. */
  payouts: Readonly<Record<string, Amount>>;
  rake?: Amount | undefined;
}

export interface CashOutFields {
  tableId: string;
  userId: string;
  /** What to cash out. Exactly one of `amount`, `all` and `leave`. */
  amount?: Amount | undefined;
  /** Cash out everything and close the seat. */
  leave?: boolean | undefined;
  /** Cash out everything and keep the seat. */
  all?: boolean | undefined;
}

/** What each operation takes, and the request message it becomes. */
export interface OperationFields {
  reserve: ReserveFields;
  commit_reservation: CommitReservationFields;
  release_reservation: ReleaseReservationFields;
  open_table: OpenTableFields;
  close_table: CloseTableFields;
  buy_in: BuyInFields;
  settle_hand: SettleHandFields;
  cash_out: CashOutFields;
}

export type Operation = keyof OperationFields;

/** Each operation's RPC (its method in BalanceService) and request schema. */
export const OPERATIONS = {
  reserve: BalanceService.method.reserve,
  commit_reservation: BalanceService.method.commitReservation,
  release_reservation: BalanceService.method.releaseReservation,
  open_table: BalanceService.method.openTable,
  close_table: BalanceService.method.closeTable,
  buy_in: BalanceService.method.buyIn,
  settle_hand: BalanceService.method.settleHand,
  cash_out: BalanceService.method.cashOut,
} as const;

export type RequestOf<O extends Operation> = MessageShape<(typeof OPERATIONS)[O]["input"]>;
export type ResponseOf<O extends Operation> = MessageShape<(typeof OPERATIONS)[O]["output"]>;

export function isOperation(name: unknown): name is Operation {
  return typeof name === "string" && Object.hasOwn(OPERATIONS, name);
}

export function requestSchema<O extends Operation>(operation: O): DescMessage {
  return OPERATIONS[operation].input;
}

/** The key an operation gets unless one is given: `{operation}:{tableId}:{userId}:{timestamp}`. */
export function defaultKey<O extends Operation>(operation: O, fields: OperationFields[O], stamp?: bigint | string): string {
  const f = fields as Partial<Record<"tableId" | "userId" | "handId" | "reservationId", string | bigint>>;
  if (operation === "settle_hand") {
    return idempotencyKey(operation, String(f.tableId), `hand-${String(f.handId)}`, stamp);
  }
  if (operation === "commit_reservation" || operation === "release_reservation") {
    return idempotencyKey(operation, f.tableId ? String(f.tableId) : `reservation-${String(f.reservationId)}`,
      f.userId === undefined ? "" : String(f.userId), stamp);
  }
  return idempotencyKey(operation, String(f.tableId), f.userId === undefined ? "" : String(f.userId), stamp);
}

type Builders = { [O in Operation]: (fields: OperationFields[O], key: string) => RequestOf<O> };

const BUILDERS: Builders = {
  reserve: (f, key) => create(ReserveRequestSchema, {
    idempotencyKey: key, userId: f.userId, tableId: f.tableId, amount: toInt64(f.amount, "amount"),
    ttlSeconds: f.ttlSeconds,
  }),
  commit_reservation: (f, key) => create(CommitReservationRequestSchema, {
    idempotencyKey: key, reservationId: toInt64(f.reservationId, "reservationId"),
    amount: optionalInt64(f.amount, "amount"), all: f.all ?? false,
  }),
  release_reservation: (f, key) => create(ReleaseReservationRequestSchema, {
    idempotencyKey: key, reservationId: toInt64(f.reservationId, "reservationId"), reason: f.reason ?? "",
  }),
  open_table: (f, key) => create(OpenTableRequestSchema, { idempotencyKey: key, tableId: f.tableId, currency: f.currency }),
  close_table: (f, key) => create(CloseTableRequestSchema, { idempotencyKey: key, tableId: f.tableId }),
  buy_in: (f, key) => create(BuyInRequestSchema, {
    idempotencyKey: key, userId: f.userId, tableId: f.tableId, amount: toInt64(f.amount, "amount"),
    ttlSeconds: f.ttlSeconds,
  }),
  settle_hand: (f, key) => create(SettleHandRequestSchema, {
    idempotencyKey: key, tableId: f.tableId, handId: f.handId,
    contributions: toInt64Map(f.contributions, "contributions"), payouts: toInt64Map(f.payouts, "payouts"),
    rake: f.rake === undefined ? 0n : toInt64(f.rake, "rake"),
  }),
  cash_out: (f, key) => create(CashOutRequestSchema, {
    idempotencyKey: key, tableId: f.tableId, userId: f.userId, amount: optionalInt64(f.amount, "amount"),
    leave: f.leave ?? false, all: f.all ?? false,
  }),
};

/** The request message of `operation`, with `key` or the default key. */
export function buildRequest<O extends Operation>(operation: O, fields: OperationFields[O], key?: string): RequestOf<O> {
  const builder = BUILDERS[operation] as (fields: OperationFields[O], key: string) => RequestOf<O>;
  return builder(fields, key ?? defaultKey(operation, fields));
}
