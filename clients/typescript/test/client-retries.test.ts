/**
 * The client's retry loop, deadlines, aborts and error classes, against an in-memory service
 * (connect's router transport) that fails on cue: no sidecar, so every status code can be produced,
 * INTERNAL and UNAVAILABLE `unavailable` included.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { HandlerContext } from "@connectrpc/connect";

import { BalanceClient, BalanceError, pb, RefusedError, UnreachableError } from "@balance/client";

interface Failure {
  code: Code;
  reason?: string;
  metadata?: Record<string, string>;
}

/** A BuyIn that fails with `failures` in turn, then answers; records each attempt's key and deadline. */
function flakyService(failures: Failure[], options: { hangMs?: number } = {}) {
  const attempts: { key: string; timeoutMs: number | undefined }[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(pb.BalanceService, {
      async buyIn(request: pb.BuyInRequest, context: HandlerContext) {
        attempts.push({ key: request.idempotencyKey, timeoutMs: context.timeoutMs() });
        if (options.hangMs !== undefined && attempts.length === 1) {
          await new Promise((resolve) => setTimeout(resolve, options.hangMs));
        }
        const failure = failures[attempts.length - 1];
        if (failure) {
          const details = failure.reason === undefined ? [] : [{
            desc: pb.ErrorInfoSchema,
            value: { reason: failure.reason, domain: "balance.v1", metadata: failure.metadata ?? {} },
          }];
          throw new ConnectError(`failure ${attempts.length}`, failure.code, undefined, details);
        }
        return create(pb.BuyInResponseSchema, {
          seat: { userId: request.userId, tableId: request.tableId, chips: request.amount },
        });
      },
    });
  });
  return { attempts, transport };
}

function clientOf(transport: ReturnType<typeof createRouterTransport>, timeoutMs = 2000) {
  // No jitter and short pauses keep these tests fast and exact.
  return new BalanceClient({ target: "in-memory", token: "t", transport, timeoutMs, random: () => 0.5,
                             retry: { initialBackoffMs: 10, maxBackoffMs: 20 } });
}

const buyIn = { userId: "alice", tableId: "t1", amount: 500n };

describe("retries", () => {
  for (const failure of [
    { code: Code.Unavailable },
    { code: Code.Unavailable, reason: "unavailable" },
    { code: Code.Aborted, reason: "idempotency_in_progress" },
    { code: Code.DeadlineExceeded, reason: "deadline_exceeded" },
    { code: Code.ResourceExhausted },  // the sidecar's cap of calls in flight
  ]) {
    test(`${Code[failure.code]} ${failure.reason ?? "(no reason)"} is retried with the same key`, async () => {
      const { attempts, transport } = flakyService([failure, failure]);
      const response = await clientOf(transport).buyIn(buyIn);
      assert.equal(response.seat?.chips, 500n);
      assert.equal(attempts.length, 3);
      assert.equal(new Set(attempts.map((a) => a.key)).size, 1);
      assert.match(attempts[0]?.key ?? "", /^buy_in:t1:alice:\d{19}$/);
    });
  }

  test("a given key is the one sent, on every attempt", async () => {
    const { attempts, transport } = flakyService([{ code: Code.Unavailable }]);
    await clientOf(transport).buyIn(buyIn, { idempotencyKey: "buy_in:t1:alice:42" });
    assert.deepEqual(attempts.map((a) => a.key), ["buy_in:t1:alice:42", "buy_in:t1:alice:42"]);
  });

  for (const failure of [
    { code: Code.Aborted, reason: "idempotency_conflict" },
    { code: Code.FailedPrecondition, reason: "insufficient_funds", metadata: { available: "100" } },
    { code: Code.InvalidArgument, reason: "invalid_amount" },
    { code: Code.NotFound, reason: "table_not_found" },
    { code: Code.PermissionDenied, reason: "permission_denied" },
    { code: Code.Unauthenticated, reason: "unauthenticated" },
  ]) {
    test(`${failure.reason} is final: one attempt, a RefusedError with its reason and details`, async () => {
      const { attempts, transport } = flakyService([failure]);
      const error = await clientOf(transport).buyIn(buyIn).then(() => assert.fail("no error"), (e: unknown) => e);
      assert.ok(error instanceof RefusedError);
      assert.equal(error.code, failure.code);
      assert.equal(error.reason, failure.reason);
      assert.deepEqual(error.details, failure.metadata ?? {});
      assert.equal(error.unreachable, false);
      assert.equal(error.attempts, 1);
      assert.equal(attempts.length, 1);
    });
  }

  for (const code of [Code.Internal, Code.Unknown, Code.Canceled]) {
    test(`${Code[code]} is no verdict (UnreachableError) and is not retried`, async () => {
      const { attempts, transport } = flakyService([{ code, reason: code === Code.Internal ? "internal_error" : "" }]);
      const error = await clientOf(transport).buyIn(buyIn).then(() => assert.fail("no error"), (e: unknown) => e);
      assert.ok(error instanceof UnreachableError);
      assert.equal(error.unreachable, true);
      assert.equal(attempts.length, 1);
    });
  }

  test("the attempts stop at maxAttempts and the last error is thrown", async () => {
    const unavailable = { code: Code.Unavailable, reason: "unavailable" };
    const { attempts, transport } = flakyService([unavailable, unavailable, unavailable, unavailable, unavailable]);
    const error = await clientOf(transport).buyIn(buyIn).then(() => assert.fail("no error"), (e: unknown) => e);
    assert.ok(error instanceof UnreachableError);
    assert.equal(error.status, "UNAVAILABLE");
    assert.equal(error.reason, "unavailable");
    assert.equal(error.attempts, 4);
    assert.equal(attempts.length, 4);
  });
});

describe("deadlines and aborts", () => {
  test("the deadline covers all attempts: each attempt gets only the time left", async () => {
    const unavailable = { code: Code.Unavailable };
    const { attempts, transport } = flakyService([unavailable, unavailable]);
    await clientOf(transport, 1500).buyIn(buyIn);
    const deadlines = attempts.map((a) => a.timeoutMs ?? Infinity);
    assert.ok((deadlines[0] ?? 0) <= 1500 && (deadlines[0] ?? 0) > 1000, String(deadlines));
    assert.ok((deadlines[2] ?? Infinity) < (deadlines[0] ?? 0), String(deadlines));
  });

  test("a hung attempt ends at attemptTimeoutMs and is retried with the same key", async () => {
    const { attempts, transport } = flakyService([], { hangMs: 2000 });
    const client = new BalanceClient({ target: "in-memory", token: "t", transport, timeoutMs: 3000,
                                       retry: { attemptTimeoutMs: 200, initialBackoffMs: 10 } });
    const started = performance.now();
    const response = await client.buyIn(buyIn);
    assert.equal(response.seat?.chips, 500n);
    assert.ok(performance.now() - started < 1500, "the second attempt answered before the first would have");
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0]?.key, attempts[1]?.key);
    assert.ok((attempts[0]?.timeoutMs ?? Infinity) <= 200);
  });

  test("a call past its deadline fails DEADLINE_EXCEEDED, as no verdict", async () => {
    const { transport } = flakyService([], { hangMs: 1000 });
    const error = await clientOf(transport, 150).buyIn(buyIn).then(() => assert.fail("no error"), (e: unknown) => e);
    assert.ok(error instanceof UnreachableError);
    assert.equal(error.status, "DEADLINE_EXCEEDED");
  });

  test("an AbortSignal stops the call at once, also between attempts, and nothing is retried after it", async () => {
    const unavailable = { code: Code.Unavailable };
    const { attempts, transport } = flakyService([unavailable, unavailable, unavailable]);
    const client = new BalanceClient({ target: "in-memory", token: "t", transport,
                                       retry: { initialBackoffMs: 400, maxBackoffMs: 400 }, random: () => 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("player left")), 100);
    const error = await client.buyIn(buyIn, { signal: controller.signal })
      .then(() => assert.fail("no error"), (e: unknown) => e);
    assert.ok(error instanceof UnreachableError);
    assert.equal(error.status, "CANCELLED");
    assert.equal(attempts.length, 1);
  });
});

describe("amounts", () => {
  test("int64 travels exactly; JS numbers are refused before anything is sent", async () => {
    const { attempts, transport } = flakyService([]);
    const client = clientOf(transport);
    const big = 2n ** 62n + 1n;
    assert.equal((await client.buyIn({ ...buyIn, amount: big })).seat?.chips, big);
    assert.equal((await client.buyIn({ ...buyIn, amount: "9007199254740993" })).seat?.chips, 9007199254740993n);
    for (const amount of [5000, "12.5", "1e3", "", "9223372036854775808"]) {
      await assert.rejects(client.buyIn({ ...buyIn, amount: amount as unknown as bigint }), /amount/);
    }
    assert.equal(attempts.length, 2);
  });

  test("BalanceError.from sorts codes into verdicts and non-verdicts", () => {
    assert.ok(BalanceError.from({ code: Code.FailedPrecondition, message: "m" }) instanceof RefusedError);
    assert.ok(BalanceError.from({ code: Code.Aborted, message: "m", reason: "idempotency_in_progress" })
      instanceof UnreachableError);
    // A reset stream reads as ABORTED with no reason of the service's: no verdict.
    assert.ok(BalanceError.from({ code: Code.Aborted, message: "read ECONNRESET" }) instanceof UnreachableError);
    assert.ok(BalanceError.from({ code: Code.Aborted, message: "m", reason: "idempotency_conflict" })
      instanceof RefusedError);
    assert.deepEqual(BalanceError.from({ code: Code.NotFound, message: "no table", reason: "table_not_found" }).toJSON(),
                     { code: "NOT_FOUND", reason: "table_not_found", message: "no table" });
  });
});
