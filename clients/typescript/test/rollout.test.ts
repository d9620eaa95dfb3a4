/**
 * The rollout modes against a real sidecar: its refusals while it is up, and each mode while it is
 * down (stopped). An unreachable service is never reported as a refusal.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { BalanceClient, BalanceGate, ReconciliationLog } from "@balance/client";
import type { GateLogger, RolloutMode } from "@balance/client";

import { Sidecar } from "./support/sidecar.js";

let sidecar: Sidecar;
let client: BalanceClient;
let dir: string;
const warnings: string[] = [];
const logger: GateLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({ wallets: [{ user: "alice", amount: 1_000n }, { user: "bob", amount: 1_000n }] });
  // Quick to give up, so the outage tests take a second each.
  client = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 1_500,
                               retry: { maxAttempts: 3, initialBackoffMs: 20 } });
  await client.openTable({ tableId: "roll-1", currency: "EUR" });
  dir = await mkdtemp(join(tmpdir(), "balance-rollout-"));
});

after(async () => {
  client.close();
  await sidecar.dispose();
  await rm(dir, { recursive: true, force: true });
});

function gate(mode: RolloutMode, permissiveFallback = false, logName = `${mode}-${permissiveFallback}.jsonl`): BalanceGate {
  return new BalanceGate({ mode, client, permissiveFallback, logger, reconciliationLog: join(dir, logName) });
}

describe("with the sidecar up", () => {
  test("shadow: a refusal is logged as a disagreement, and the seat goes ahead", async () => {
    warnings.length = 0;
    const decision = await gate("shadow", false, "shadow-refused.jsonl").buyIn({ userId: "alice", tableId: "roll-1", amount: 5_000n });
    // Gone ahead against the service's no: queued, so that a lasting refusal is reported as a divergence.
    assert.deepEqual([decision.allowed, decision.outcome, decision.reason, decision.queued],
                     [true, "refused", "insufficient_funds", true]);
    assert.match(warnings.join("\n"), /shadow disagreement: buy_in allowed by the poker side, refused .*insufficient_funds/);
    const [line] = await new ReconciliationLog(join(dir, "shadow-refused.jsonl")).entries();
    assert.deepEqual([line?.operation, line?.let_through, line?.error.reason], ["buy_in", true, "insufficient_funds"]);
  });

  test("shadow: the service allowing what the poker side refused is logged too", async () => {
    warnings.length = 0;
    const decision = await gate("shadow").buyIn({ userId: "alice", tableId: "roll-1", amount: 100n },
                                                 { expectedAllowed: false });
    assert.deepEqual([decision.allowed, decision.outcome], [true, "ok"]);
    assert.equal(decision.response?.seat?.chips, 100n);
    assert.match(warnings.join("\n"), /refused by the poker side, allowed by the balance service/);
  });

  test("enforce: the service's refusal refuses; its yes is the answer", async () => {
    const enforce = gate("enforce");
    const no = await enforce.buyIn({ userId: "bob", tableId: "roll-1", amount: 5_000n });
    assert.deepEqual([no.allowed, no.outcome, no.reason], [false, "refused", "insufficient_funds"]);
    const yes = await enforce.buyIn({ userId: "bob", tableId: "roll-1", amount: 200n });
    assert.deepEqual([yes.allowed, yes.outcome, yes.reason], [true, "ok", ""]);
    assert.match(yes.idempotencyKey, /^buy_in:roll-1:bob:\d+$/);
  });

  test("off: no call at all, whatever the service would say", async () => {
    const off = new BalanceGate({ mode: "off" });
    const decision = await off.buyIn({ userId: "alice", tableId: "roll-1", amount: 5_000n });
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued], [true, "skipped", false]);
  });

  test("a gate that could let operations through needs a log; modes other than off need a client", () => {
    assert.throws(() => new BalanceGate({ mode: "shadow", client }), /reconciliation log/);
    assert.throws(() => new BalanceGate({ mode: "enforce", client, permissiveFallback: true }), /reconciliation log/);
    assert.throws(() => new BalanceGate({ mode: "enforce", client }), /reconciliation log/);
    assert.throws(() => new BalanceGate({ mode: "enforce" }), /needs a BalanceClient/);
    assert.throws(() => new BalanceGate({ mode: "loud" as RolloutMode, client }), /rollout mode/);
  });
});

describe("with the sidecar down", () => {
  const settle = { tableId: "roll-1", handId: "down-1", contributions: { alice: 50n, bob: 50n }, payouts: { bob: 95n }, rake: 5n };
  before(() => sidecar.stop());

  test("off: allowed, nothing called, nothing logged", async () => {
    const decision = await new BalanceGate({ mode: "off" }).settleHand(settle);
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued], [true, "skipped", false]);
  });

  test("shadow: allowed, pending (not refused), and queued for replay", async () => {
    const shadow = gate("shadow");
    const decision = await shadow.settleHand(settle);
    assert.deepEqual([decision.allowed, decision.outcome, decision.reason, decision.queued],
                     [true, "pending", "UNAVAILABLE", true]);
    const [line] = await new ReconciliationLog(join(dir, "shadow-false.jsonl")).entries();
    assert.equal(line?.operation, "settle_hand");
    assert.equal(line?.mode, "shadow");
    assert.equal(line?.idempotency_key, decision.idempotencyKey);
    assert.deepEqual(line?.request["contributions"], { alice: "50", bob: "50" });
  });

  test("enforce: not allowed yet, pending with its key, never a refusal; queued for the outbox", async () => {
    const decision = await gate("enforce").cashOut({ tableId: "roll-1", userId: "alice", leave: true });
    assert.deepEqual([decision.allowed, decision.outcome, decision.reason, decision.queued],
                     [false, "pending", "UNAVAILABLE", true]);
    const lines = await new ReconciliationLog(join(dir, "enforce-false.jsonl")).entries();
    assert.deepEqual(lines.map((l) => [l.operation, l.idempotency_key, l.let_through]),
                     [["cash_out", decision.idempotencyKey, false]]);
    assert.equal(decision.error?.unreachable, true);
    assert.match(decision.idempotencyKey, /^cash_out:roll-1:alice:\d+$/);
  });

  test("enforce with the permissive fallback: allowed, pending, and queued", async () => {
    const decision = await gate("enforce", true).buyIn({ userId: "bob", tableId: "roll-1", amount: 300n });
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued], [true, "pending", true]);
    const lines = await new ReconciliationLog(join(dir, "enforce-true.jsonl")).entries();
    assert.deepEqual(lines.map((l) => [l.operation, l.mode, l.request["amount"], l.error.code]),
                     [["buy_in", "enforce", "300", "UNAVAILABLE"]]);
  });

  test("a let-through that cannot be logged is not allowed in enforce mode", async () => {
    // The log's directory is a file: every append fails.
    await writeFile(join(dir, "not-a-dir"), "");
    const unwritable = new BalanceGate({ mode: "enforce", client, permissiveFallback: true, logger,
                                         reconciliationLog: join(dir, "not-a-dir", "recon.jsonl") });
    const decision = await unwritable.buyIn({ userId: "bob", tableId: "roll-1", amount: 300n });
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued], [false, "pending", false]);
  });

  test("back up: nothing of the above reached the service", async () => {
    await sidecar.restart();
    const table = (await client.getTable({ tableId: "roll-1" })).table;
    const chips = Object.fromEntries(table?.seats.map((s) => [s.userId, s.chips]) ?? []);
    assert.deepEqual(chips, { alice: 100n, bob: 200n });
  });
});
