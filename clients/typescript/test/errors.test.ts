/**
 * Every error code the sidecar gives a caller, with its ErrorInfo reason, as BalanceClient reports it
 * (a RefusedError, or an UnreachableError when there is no verdict), and that a refusal moved nothing.
 *
 * Not produced here, because a healthy server on the public API cannot be made to: `internal_error`
 * (a server bug), `unavailable` (its database down), `idempotency_in_progress` (a concurrent first
 * call still running), `seat_not_found` and `invalid_state` (not raised on the gRPC paths).
 * test/client-retries.test.ts covers how the client treats each of them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BalanceClient, BalanceError, RefusedError, UnreachableError } from "@balance/client";
import type { StatusName } from "@balance/client";

import { Sidecar } from "./support/sidecar.js";

let sidecar: Sidecar;
let client: BalanceClient;

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({
    wallets: [{ user: "alice", amount: 1_000n }, { user: "bob", amount: 1_000n }, { user: "frozen", amount: 500n },
              { user: "gone" }, { user: "usd", amount: 500n, currency: "USD" }],
    freeze: ["frozen"], close: ["gone"],
  });
  client = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 5_000 });
  await client.openTable({ tableId: "err-1", currency: "EUR" });
  await client.buyIn({ userId: "alice", tableId: "err-1", amount: 300n });
  await client.buyIn({ userId: "bob", tableId: "err-1", amount: 300n });
});

after(async () => {
  client.close();
  await sidecar.dispose();
});

async function failure(call: Promise<unknown>): Promise<BalanceError> {
  const error = await call.then(() => assert.fail("the call succeeded"), (e: unknown) => e);
  assert.ok(error instanceof BalanceError, String(error));
  return error;
}

async function refused(call: Promise<unknown>, status: StatusName, reason: string): Promise<BalanceError> {
  const error = await failure(call);
  assert.deepEqual([error.status, error.reason], [status, reason], error.message);
  assert.ok(error instanceof RefusedError);
  assert.equal(error.unreachable, false);
  assert.equal(error.attempts, 1, "a refusal is never retried");
  return error;
}

describe("INVALID_ARGUMENT", () => {
  test("invalid_amount, invalid_request, idempotency_key_missing, idempotency_key_invalid", async () => {
    const error = await refused(client.buyIn({ userId: "alice", tableId: "err-1", amount: 0n }),
                                "INVALID_ARGUMENT", "invalid_amount");
    assert.equal(error.details["field"], "amount");
    await refused(client.cashOut({ tableId: "err-1", userId: "alice", amount: -1n }), "INVALID_ARGUMENT", "invalid_amount");
    await refused(client.openTable({ tableId: "err-x", currency: "€" }), "INVALID_ARGUMENT", "invalid_request");
    await refused(client.reserve({ userId: "alice", tableId: "err-1", amount: 10n, ttlSeconds: 0 }),
                  "INVALID_ARGUMENT", "invalid_request");
    await refused(client.buyIn({ userId: "alice", tableId: "err-1", amount: 10n }, { idempotencyKey: "" }),
                  "INVALID_ARGUMENT", "idempotency_key_missing");
    await refused(client.buyIn({ userId: "alice", tableId: "err-1", amount: 10n }, { idempotencyKey: "bad\nkey" }),
                  "INVALID_ARGUMENT", "idempotency_key_invalid");
  });
});

describe("UNAUTHENTICATED and PERMISSION_DENIED", () => {
  test("a bad token; a key without the method's scope", async () => {
    const stranger = new BalanceClient({ target: sidecar.address, token: "bal_not_a_key" });
    const reader = new BalanceClient({ target: sidecar.address, token: sidecar.env.readToken });
    try {
      await refused(stranger.getTable({ tableId: "err-1" }), "UNAUTHENTICATED", "unauthenticated");
      await refused(reader.buyIn({ userId: "alice", tableId: "err-1", amount: 10n }), "PERMISSION_DENIED",
                    "permission_denied");
      assert.equal((await reader.getBalance({ userId: "alice", currency: "EUR" })).account?.available, 700n);
    } finally {
      stranger.close();
      reader.close();
    }
  });
});

describe("NOT_FOUND", () => {
  test("account_not_found, reservation_not_found, table_not_found", async () => {
    await refused(client.getBalance({ userId: "nobody", currency: "EUR" }), "NOT_FOUND", "account_not_found");
    await refused(client.getBalance({ accountId: 987_654n }), "NOT_FOUND", "account_not_found");
    await refused(client.buyIn({ userId: "nobody", tableId: "err-1", amount: 10n }), "NOT_FOUND", "account_not_found");
    await refused(client.getReservation({ reservationId: 987_654n }), "NOT_FOUND", "reservation_not_found");
    await refused(client.commitReservation({ reservationId: 987_654n, all: true }), "NOT_FOUND", "reservation_not_found");
    await refused(client.releaseReservation({ reservationId: 987_654n }), "NOT_FOUND", "reservation_not_found");
    await refused(client.getTable({ tableId: "missing" }), "NOT_FOUND", "table_not_found");
    await refused(client.settleHand({ tableId: "missing", handId: "h", contributions: { alice: 1n }, payouts: { bob: 1n } }),
                  "NOT_FOUND", "table_not_found");
  });
});

describe("ABORTED", () => {
  test("idempotency_conflict: the same key with another request, final at once", async () => {
    const key = "buy_in:err-1:alice:conflict";
    await client.buyIn({ userId: "alice", tableId: "err-1", amount: 10n }, { idempotencyKey: key });
    await refused(client.buyIn({ userId: "alice", tableId: "err-1", amount: 20n }, { idempotencyKey: key }),
                  "ABORTED", "idempotency_conflict");
  });
});

describe("FAILED_PRECONDITION", () => {
  test("funds and chips: insufficient_funds, insufficient_chips, settlement_invalid, player_not_seated", async () => {
    const funds = await refused(client.buyIn({ userId: "alice", tableId: "err-1", amount: 10_000n }),
                                "FAILED_PRECONDITION", "insufficient_funds");
    assert.ok(Object.keys(funds.details).length > 0, "the refusal's details travel as ErrorInfo metadata");
    await refused(client.cashOut({ tableId: "err-1", userId: "bob", amount: 301n }), "FAILED_PRECONDITION",
                  "insufficient_chips");
    await refused(client.settleHand({ tableId: "err-1", handId: "h0", contributions: { alice: 400n }, payouts: { bob: 400n } }),
                  "FAILED_PRECONDITION", "insufficient_chips");
    await refused(client.settleHand({ tableId: "err-1", handId: "h0", contributions: { alice: 100n, bob: 100n },
                                      payouts: { alice: 150n } }), "FAILED_PRECONDITION", "settlement_invalid");
    await refused(client.settleHand({ tableId: "err-1", handId: "h0", contributions: { stranger: 10n }, payouts: { alice: 10n } }),
                  "FAILED_PRECONDITION", "player_not_seated");
    await refused(client.cashOut({ tableId: "err-1", userId: "stranger", all: true }), "FAILED_PRECONDITION", "player_not_seated");
  });

  test("hand_conflict: a hand id settled before with other figures", async () => {
    await client.settleHand({ tableId: "err-1", handId: "h1", contributions: { alice: 10n, bob: 10n }, payouts: { alice: 20n } });
    await refused(client.settleHand({ tableId: "err-1", handId: "h1", contributions: { alice: 10n, bob: 10n },
                                      payouts: { bob: 20n } }), "FAILED_PRECONDITION", "hand_conflict");
  });

  test("reservations: reservation_not_pending, reservation_expired", async () => {
    const held = (await client.reserve({ userId: "bob", tableId: "err-1", amount: 50n })).reservation;
    await client.releaseReservation({ reservationId: held?.id ?? 0n });
    await refused(client.commitReservation({ reservationId: held?.id ?? 0n, all: true }), "FAILED_PRECONDITION", "reservation_not_pending");
    // 5 s is the shortest TTL the service takes.
    const brief = (await client.reserve({ userId: "bob", tableId: "err-1", amount: 50n, ttlSeconds: 5 })).reservation;
    await delay(5_300);
    await refused(client.commitReservation({ reservationId: brief?.id ?? 0n, all: true }), "FAILED_PRECONDITION", "reservation_expired");
  });

  test("accounts and tables: account_frozen, account_closed, currency_mismatch, table_not_empty, table_closed", async () => {
    await refused(client.buyIn({ userId: "frozen", tableId: "err-1", amount: 10n }), "FAILED_PRECONDITION", "account_frozen");
    await refused(client.buyIn({ userId: "gone", tableId: "err-1", amount: 10n }), "FAILED_PRECONDITION", "account_closed");
    await refused(client.openTable({ tableId: "err-1", currency: "USD" }), "FAILED_PRECONDITION", "currency_mismatch");
    await refused(client.closeTable({ tableId: "err-1" }), "FAILED_PRECONDITION", "table_not_empty");
    await client.openTable({ tableId: "err-2", currency: "USD" });
    await client.closeTable({ tableId: "err-2" });
    await refused(client.buyIn({ userId: "usd", tableId: "err-2", amount: 10n }), "FAILED_PRECONDITION", "table_closed");
  });
});

describe("DEADLINE_EXCEEDED and UNAVAILABLE", () => {
  test("deadline_exceeded: the server refuses a mutation with under 5 ms left, and nothing happens", async () => {
    // The client's deadline is seconds; this transport tells the server 4 ms, as a caller short of time would.
    const raw = createGrpcTransport({ baseUrl: `http://${sidecar.address}` });
    const tight: Transport = {
      unary: (method, signal, _timeoutMs, header, input, values) =>
        raw.unary(method, signal, undefined, { ...Object.fromEntries(new Headers(header)), "grpc-timeout": "4m" }, input, values),
      stream: (...args) => raw.stream(...args),
    };
    const hurried = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, transport: tight,
                                        retry: { maxAttempts: 1 } });
    const reasons: string[] = [];
    for (let i = 0; i < 5 && !reasons.includes("deadline_exceeded"); i++) {
      // The first call on a connection may run out of time in the server's transport, before the check.
      const error = await failure(hurried.openTable({ tableId: "err-late", currency: "EUR" }));
      assert.equal(error.status, "DEADLINE_EXCEEDED");
      assert.ok(error instanceof UnreachableError);
      reasons.push(error.reason);
    }
    assert.ok(reasons.includes("deadline_exceeded"), String(reasons));
    await refused(client.getTable({ tableId: "err-late" }), "NOT_FOUND", "table_not_found");
  });

  test("no sidecar at the address: UNAVAILABLE, no verdict, after the client's retries", async () => {
    const nowhere = new BalanceClient({ target: "127.0.0.1:1", token: sidecar.env.token, retry: { initialBackoffMs: 5 } });
    try {
      const error = await failure(nowhere.getTable({ tableId: "err-1" }));
      assert.equal(error.status, "UNAVAILABLE");
      assert.ok(error instanceof UnreachableError);
      assert.equal(error.attempts, 4);
    } finally {
      nowhere.close();
    }
  });
});
