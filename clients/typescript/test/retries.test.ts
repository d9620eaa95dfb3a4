/**
 * Retries against a real sidecar that goes away: stopped for a deploy (SIGTERM), crashed (SIGKILL)
 * and hung (SIGSTOP). Each time the client keeps the call's idempotency key on every attempt, the
 * call succeeds once the sidecar is back, and the money moves once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import { BalanceClient } from "@balance/client";
import type { RetryEvent } from "@balance/client";

import { Sidecar } from "./support/sidecar.js";

let sidecar: Sidecar;

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({ wallets: [{ user: "alice", amount: 10_000n }, { user: "bob", amount: 10_000n },
                                     { user: "carol", amount: 10_000n }] });
  const setup = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 5_000 });
  await setup.openTable({ tableId: "retry-1", currency: "EUR" });
  setup.close();
});

after(() => sidecar.dispose());

/** A patient client (the sidecar may take seconds to come back) that records its retries. */
function patientClient(retries: RetryEvent[], attemptTimeoutMs?: number): BalanceClient {
  return new BalanceClient({
    target: sidecar.address, token: sidecar.env.token, timeoutMs: 30_000,
    retry: { maxAttempts: 100, initialBackoffMs: 50, maxBackoffMs: 200, attemptTimeoutMs },
    onRetry: (event) => retries.push(event),
  });
}

async function wallet(client: BalanceClient, user: string): Promise<bigint | undefined> {
  return (await client.getBalance({ userId: user, currency: "EUR" })).account?.available;
}

describe("across a sidecar restart", () => {
  for (const [how, signal] of [["stopped for a deploy (SIGTERM)", "SIGTERM"], ["crashed (SIGKILL)", "SIGKILL"]] as const) {
    test(`a buy-in sent while the sidecar is ${how} lands once when it is back`, async () => {
      const user = signal === "SIGTERM" ? "alice" : "bob";
      const retries: RetryEvent[] = [];
      const client = patientClient(retries);
      try {
        assert.equal(await wallet(client, user), 10_000n, "the connection is open before the outage");
        await sidecar.stop(signal);
        const call = client.buyIn({ userId: user, tableId: "retry-1", amount: 700n });
        await delay(800);
        await sidecar.restart();
        const joined = await call;
        assert.equal(joined.seat?.chips, 700n);
        assert.ok(retries.length >= 2, `retried ${retries.length} times`);
        assert.ok(retries.every((r) => r.error.status === "UNAVAILABLE"), retries.map((r) => r.error.message).join("; "));
        const keys = new Set(retries.map((r) => r.idempotencyKey));
        assert.equal(keys.size, 1);
        assert.match([...keys][0] ?? "", new RegExp(`^buy_in:retry-1:${user}:\\d+$`));

        // The same key again is the same buy-in: the stored answer, no second debit.
        const again = await client.buyIn({ userId: user, tableId: "retry-1", amount: 700n }, { idempotencyKey: [...keys][0] });
        assert.equal(again.transaction?.id, joined.transaction?.id);
        assert.equal(await wallet(client, user), 9_300n);
      } finally {
        client.close();
      }
    });
  }
});

describe("a hung sidecar", () => {
  test("attempts end DEADLINE_EXCEEDED and are retried with the same key; resumed, it moves the money once", async () => {
    const retries: RetryEvent[] = [];
    const client = patientClient(retries, 300);
    try {
      assert.equal(await wallet(client, "carol"), 10_000n);
      sidecar.pause();
      const buyIn = client.buyIn({ userId: "carol", tableId: "retry-1", amount: 1_000n });
      await delay(1_200);
      sidecar.resume();
      const joined = await buyIn;
      assert.equal(joined.seat?.chips, 1_000n);
      const buyInRetries = retries;
      assert.ok(buyInRetries.length >= 2, `retried ${buyInRetries.length} times`);
      assert.ok(buyInRetries.every((r) => r.error.status === "DEADLINE_EXCEEDED"));
      assert.equal(new Set(buyInRetries.map((r) => r.idempotencyKey)).size, 1);
      // Attempts queued while it hung reach the server when it resumes: all carry the one key.
      await delay(300);
      assert.equal(await wallet(client, "carol"), 9_000n);
      const seat = (await client.getTable({ tableId: "retry-1" })).table?.seats.find((s) => s.userId === "carol");
      assert.equal(seat?.chips, 1_000n);
    } finally {
      sidecar.resume();
      client.close();
    }
  });
});
