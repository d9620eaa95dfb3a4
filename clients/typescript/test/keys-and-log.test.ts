/** Idempotency keys and the reconciliation log's file format, without a sidecar. */
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { Code } from "@connectrpc/connect";

import { BalanceError, buildRequest, defaultKey, idempotencyKey, ReconciliationLog, uniqueTimestampNs } from "@balance/client";

describe("idempotency keys", () => {
  test("{operation}:{tableId}:{userId}:{timestamp}, with a nanosecond timestamp near the wall clock", () => {
    const key = idempotencyKey("buy_in", "t1", "alice");
    const match = /^buy_in:t1:alice:(\d+)$/.exec(key);
    assert.ok(match, key);
    const ms = Number(BigInt(match[1] ?? "0") / 1_000_000n);
    assert.ok(Math.abs(ms - Date.now()) < 5_000);
  });

  test("timestamps are strictly increasing, so keys made in the same instant differ", () => {
    const stamps = Array.from({ length: 10_000 }, () => uniqueTimestampNs());
    for (let i = 1; i < stamps.length; i++) {
      assert.ok((stamps[i] ?? 0n) > (stamps[i - 1] ?? 0n));
    }
  });

  test("settlements put hand-<id> in the user slot, reservation calls reservation-<id> in the table slot", () => {
    assert.match(defaultKey("settle_hand", { tableId: "t1", handId: "1001", contributions: {}, payouts: {} }),
                 /^settle_hand:t1:hand-1001:\d+$/);
    assert.match(defaultKey("commit_reservation", { reservationId: 7n }), /^commit_reservation:reservation-7::\d+$/);
    assert.match(defaultKey("open_table", { tableId: "t1", currency: "EUR" }), /^open_table:t1::\d+$/);
    assert.equal(defaultKey("cash_out", { tableId: "t1", userId: "bob" }, "session-9"), "cash_out:t1:bob:session-9");
  });
});

const dir = await mkdtemp(join(tmpdir(), "balance-log-"));
after(() => rm(dir, { recursive: true, force: true }));

describe("reconciliation log", () => {
  const unreachable = BalanceError.from({ code: Code.Unavailable, message: "connect ECONNREFUSED" });

  test("one JSON object a line: the Python client's fields, the request in protobuf JSON (int64 as strings)", async () => {
    const log = new ReconciliationLog(join(dir, "a", "recon.jsonl"));
    const request = buildRequest("settle_hand", { tableId: "t1", handId: "h1", rake: 10n,
      contributions: { alice: 9007199254740993n, bob: "200" }, payouts: { alice: "9007199254741183" } }, "k-1");
    const entry = await log.append({ operation: "settle_hand", request, mode: "shadow", error: unreachable });
    const lines = (await readFile(log.path, "utf8")).split("\n");
    assert.equal(lines.length, 2);
    assert.equal(lines[1], "");
    const written = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.deepEqual(Object.keys(written).sort(),
                     ["error", "id", "idempotency_key", "let_through", "mode", "operation", "request", "time"]);
    assert.equal(written["let_through"], true);
    assert.deepEqual(written["request"], { tableId: "t1", handId: "h1", rake: "10",
      contributions: { alice: "9007199254740993", bob: "200" }, payouts: { alice: "9007199254741183" } });
    assert.equal(written["idempotency_key"], "k-1");
    assert.deepEqual(written["error"], { code: "UNAVAILABLE", reason: "", message: "connect ECONNREFUSED" });
    assert.deepEqual(await log.entries(), [entry]);
  });

  test("marks go to LOG.replayed; pending() is what is not marked, in order", async () => {
    const log = new ReconciliationLog(join(dir, "marks.jsonl"));
    const entries = [];
    for (const user of ["a", "b", "c"]) {
      const request = buildRequest("cash_out", { tableId: "t1", userId: user, leave: true }, `cash_out:t1:${user}:1`);
      entries.push(await log.append({ operation: "cash_out", request, mode: "enforce", error: unreachable }));
    }
    await log.mark(entries[1]!, "ok");
    assert.deepEqual((await log.pending()).map((e) => e.idempotency_key), ["cash_out:t1:a:1", "cash_out:t1:c:1"]);
    const mark = JSON.parse((await readFile(log.marksPath, "utf8")).trim()) as Record<string, unknown>;
    assert.equal(mark["id"], entries[1]?.id);
    assert.equal(mark["outcome"], "ok");
  });

  test("a torn last line (a crash mid-write) is skipped, and the next line is not glued onto it", async () => {
    const log = new ReconciliationLog(join(dir, "torn.jsonl"));
    const request = buildRequest("open_table", { tableId: "t9", currency: "EUR" }, "open_table:t9::1");
    await log.append({ operation: "open_table", request, mode: "shadow", error: unreachable });
    await appendFile(log.path, '{"id":"torn","operation":"buy_in","req');
    await log.append({ operation: "open_table", request, mode: "shadow", error: unreachable });
    assert.equal((await log.entries()).length, 2);
  });

  test("appends made at once all land whole", async () => {
    const log = new ReconciliationLog(join(dir, "concurrent.jsonl"));
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append({
      operation: "buy_in", mode: "shadow", error: unreachable,
      request: buildRequest("buy_in", { tableId: "t1", userId: `u${i}`, amount: BigInt(i + 1) }),
    })));
    const entries = await log.entries();
    assert.equal(entries.length, 50);
    assert.equal(new Set(entries.map((e) => e.id)).size, 50);
  });
});
