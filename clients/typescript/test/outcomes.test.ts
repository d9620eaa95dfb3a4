/**
 * An unknown outcome is never a refusal (issue #10), against a real sidecar behind a proxy that
 * loses answers after the server handled the call: same-key retries, pending and the outbox,
 * waiting behind earlier lines, divergences, `balance-reconcile`, and the balance read cache.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { BalanceClient, BalanceError, BalanceGate, ReconciliationLog } from "@balance/client";
import type { GateLogger, LogEntry, ReplayMark } from "@balance/client";

import { LossyProxy } from "./support/lossy-proxy.js";
import { Sidecar } from "./support/sidecar.js";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
let sidecar: Sidecar;
let proxy: LossyProxy;
let direct: BalanceClient;
let dir: string;
const clients: BalanceClient[] = [];
const warnings: string[] = [];
const logger: GateLogger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({ wallets: ["ann", "ben", "cid", "dee", "eve", "fox"].map((user) => ({ user, amount: 1_000n })) });
  proxy = await LossyProxy.start(sidecar.address);
  direct = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 5_000 });
  for (const tableId of ["out-1", "out-2", "out-3", "out-4"]) {
    await direct.openTable({ tableId, currency: "EUR" });
  }
  dir = await mkdtemp(join(tmpdir(), "balance-outcomes-"));
});

after(async () => {
  clients.forEach((c) => c.close());
  direct.close();
  await proxy.close();
  await sidecar.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A client through the proxy, quick to give up. */
function proxied(maxStalenessMs?: number): BalanceClient {
  const client = new BalanceClient({ target: proxy.address, token: sidecar.env.token, timeoutMs: 2_000,
                                     retry: { maxAttempts: 3, initialBackoffMs: 20 },
                                     ...(maxStalenessMs === undefined ? {} : { maxStalenessMs }) });
  clients.push(client);
  return client;
}

async function balance(user: string): Promise<bigint | undefined> {
  return (await direct.getBalance({ userId: user, currency: "EUR" })).account?.balance;
}

async function until<T>(read: () => T | undefined, ms = 10_000): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const value = read();
    if (value !== undefined) {
      return value;
    }
    assert.ok(performance.now() < end, "timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function reconcileBin(logPath: string, ...args: string[]): Promise<{ status: number; stdout: string }> {
  const manifest = JSON.parse(await readFile(join(PACKAGE, "package.json"), "utf8")) as { bin: Record<string, string> };
  const bin = join(PACKAGE, manifest.bin["balance-reconcile"] ?? "");
  return new Promise((done) => {
    execFile(process.execPath, [bin, logPath, ...args], { env: { ...process.env, BALANCE_GRPC_TOKEN: sidecar.env.token } },
             (error, stdout) => done({ status: error ? Number(error.code ?? 1) : 0, stdout }));
  });
}

describe("an answer lost after the server committed", () => {
  test("within the budget: a same-key retry learns it, the money moves once", async () => {
    proxy.mode = "lose";
    proxy.lost = 0;
    proxy.loseLimit = 1;
    const gate = new BalanceGate({ mode: "enforce", client: proxied(), logger, reconciliationLog: join(dir, "once.jsonl") });
    const decision = await gate.buyIn({ userId: "ann", tableId: "out-1", amount: 300n });
    proxy.mode = "pass";
    assert.equal(proxy.lost, 1);
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued], [true, "ok", false]);
    assert.equal(decision.response?.seat?.chips, 300n);
    assert.equal(await balance("ann"), 700n);
  });

  test("past the budget (enforce): pending and queued, never refused; the outbox learns the answer", async () => {
    proxy.mode = "lose";
    proxy.lost = 0;
    proxy.loseLimit = Infinity;
    const logPath = join(dir, "enforce.jsonl");
    const gate = new BalanceGate({ mode: "enforce", client: proxied(), logger, reconciliationLog: logPath });
    const decision = await gate.buyIn({ userId: "ben", tableId: "out-2", amount: 300n });
    assert.ok(proxy.lost >= 1);
    assert.deepEqual([decision.allowed, decision.outcome, decision.queued, decision.error?.unreachable],
                     [false, "pending", true, true]);
    assert.equal(await balance("ben"), 700n, "the server did it; the caller could not learn it");
    const [line] = await new ReconciliationLog(logPath).entries();
    assert.deepEqual([line?.idempotency_key, line?.let_through], [decision.idempotencyKey, false]);

    proxy.mode = "pass";
    const answers: [LogEntry, ReplayMark][] = [];
    gate.startOutbox({ intervalMs: 50, onAnswer: (entry, mark) => answers.push([entry, mark]) });
    const [entry, mark] = await until(() => answers[0]);
    await gate.stopOutbox();
    assert.equal(entry.idempotency_key, decision.idempotencyKey);
    assert.deepEqual([mark.outcome, mark.divergence], ["ok", false]);
    assert.equal((mark.response as { seat: { chips: string } }).seat.chips, "300");
    assert.equal(await balance("ben"), 700n, "applied once");
    const report = await reconcileBin(logPath);
    assert.equal(report.status, 0, report.stdout);
    assert.match(report.stdout, /resolved: buy_in key=buy_in:out-2:ben:\d+: held as pending/);
  });
});

describe("shadow while down, then back", () => {
  test("a settlement waits behind its buy-ins; a lasting refusal is a divergence; reconcile says so", async () => {
    proxy.mode = "down";
    const logPath = join(dir, "shadow.jsonl");
    const gate = new BalanceGate({ mode: "shadow", client: proxied(), logger, reconciliationLog: logPath });
    for (const user of ["cid", "dee"]) {
      const joined = await gate.buyIn({ userId: user, tableId: "out-3", amount: 1_000n });
      assert.deepEqual([joined.allowed, joined.outcome, joined.queued], [true, "pending", true]);
    }
    const hand1 = await gate.settleHand({ tableId: "out-3", handId: "h1", contributions: { cid: 500n, dee: 500n },
                                          payouts: { dee: 950n }, rake: 50n });
    assert.deepEqual([hand1.allowed, hand1.outcome, hand1.reason], [true, "pending", "queued_behind"]);
    // More than eve has: let through by the poker side, and refused once the service is back.
    assert.ok((await gate.buyIn({ userId: "eve", tableId: "out-4", amount: 5_000n })).allowed);

    proxy.mode = "pass";
    warnings.length = 0;
    const hand2 = await gate.settleHand({ tableId: "out-3", handId: "h2", contributions: { dee: 100n },
                                          payouts: { dee: 100n } });
    assert.deepEqual([hand2.allowed, hand2.outcome], [true, "ok"]);
    const seats = (await direct.getTable({ tableId: "out-3" })).table?.seats ?? [];
    assert.deepEqual(Object.fromEntries(seats.map((s) => [s.userId, s.chips])), { cid: 500n, dee: 1_450n });
    const marks = [...(await new ReconciliationLog(logPath).marks()).values()];
    assert.deepEqual(marks.map((m) => [m.outcome, m.reason, m.divergence]),
                     [["ok", "", false], ["ok", "", false], ["ok", "", false], ["refused", "insufficient_funds", true]]);
    assert.match(warnings.join("\n"), /balance divergence: buy_in key=buy_in:out-4:eve:\d+ .*insufficient_funds/);
    assert.equal(await balance("eve"), 1_000n);

    const books = join(dir, "books.json");
    await writeFile(books, JSON.stringify({ "out-3": { cid: 500, dee: 1450 }, "out-4": { eve: 5000 } }));
    const report = await reconcileBin(logPath, "--target", sidecar.address, "--books", books);
    assert.equal(report.status, 1, report.stdout);
    assert.match(report.stdout, /divergence: buy_in key=buy_in:out-4:eve:\d+: let through by the poker side, refused \(insufficient_funds\)/);
    assert.match(report.stdout, /chips: table out-4 eve: poker side 5000, service 0/);
    assert.doesNotMatch(report.stdout, /out-3/);
  });
});

describe("the balance read cache", () => {
  test("serves a stale-marked balance only while the service is unreachable and within its bound", async () => {
    proxy.mode = "pass";
    const client = proxied(300);
    const fresh = await client.readBalance({ userId: "fox", currency: "EUR" });
    assert.deepEqual([fresh.stale, fresh.response.account?.balance], [false, 1_000n]);
    proxy.mode = "down";
    const stale = await client.readBalance({ accountId: fresh.response.account?.id ?? 0n });
    assert.deepEqual([stale.stale, stale.response.account?.balance], [true, 1_000n]);
    assert.ok(stale.ageMs >= 0 && stale.ageMs <= 300);
    await new Promise((r) => setTimeout(r, 350));
    await assert.rejects(client.readBalance({ userId: "fox", currency: "EUR" }),
                         (e: unknown) => e instanceof BalanceError && e.unreachable);
  });

  test("a mutation naming the player drops its entry, whatever the mutation's outcome", async () => {
    proxy.mode = "pass";
    const client = proxied(60_000);
    await client.readBalance({ userId: "fox", currency: "EUR" });
    proxy.mode = "down";
    await assert.rejects(client.buyIn({ userId: "fox", tableId: "out-4", amount: 100n }));
    await assert.rejects(client.readBalance({ userId: "fox", currency: "EUR" }),
                         (e: unknown) => e instanceof BalanceError && e.unreachable);
    proxy.mode = "pass";
  });
});
