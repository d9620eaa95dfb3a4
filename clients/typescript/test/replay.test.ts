/**
 * `balance-replay` (the package's bin) on a reconciliation log written while the sidecar was down:
 * nothing moves while it is still down, everything moves once when it is back, and a second run
 * moves nothing. A line whose operation had in fact reached the service is answered from its stored
 * response. A line the service refuses is reported (exit 2) and not sent again.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { BalanceClient, BalanceGate, buildRequest, ReconciliationLog, UnreachableError } from "@balance/client";
import { Code } from "@connectrpc/connect";

import { Sidecar } from "./support/sidecar.js";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
let sidecar: Sidecar;
let client: BalanceClient;
let dir: string;
let logPath: string;

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({ wallets: [{ user: "alice", amount: 1_000n }, { user: "bob", amount: 1_000n },
                                     { user: "carol", amount: 1_000n }] });
  client = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 1_500,
                               retry: { maxAttempts: 2, initialBackoffMs: 20 } });
  await client.openTable({ tableId: "replay-1", currency: "EUR" });
  dir = await mkdtemp(join(tmpdir(), "balance-replay-"));
  logPath = join(dir, "recon.jsonl");
});

after(async () => {
  client.close();
  await sidecar.dispose();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the bin as npm links it (package.json "bin"), with the token from the environment. */
async function balanceReplay(...args: string[]): Promise<Run> {
  const manifest = JSON.parse(await readFile(join(PACKAGE, "package.json"), "utf8")) as { bin: Record<string, string> };
  const bin = join(PACKAGE, manifest.bin["balance-replay"] ?? "");
  return new Promise((done) => {
    execFile(process.execPath, [bin, logPath, "--target", sidecar.address, "--timeout", "2", ...args],
             { env: { ...process.env, BALANCE_GRPC_TOKEN: sidecar.env.token } },
             (error, stdout, stderr) => done({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
}

async function wallets(): Promise<Record<string, bigint | undefined>> {
  const users = ["alice", "bob", "carol"];
  const balances = await Promise.all(users.map((u) => client.getBalance({ userId: u, currency: "EUR" })));
  return Object.fromEntries(users.map((u, i) => [u, balances[i]?.account?.balance]));
}

async function seats(): Promise<Record<string, bigint>> {
  const table = (await client.getTable({ tableId: "replay-1" })).table;
  // Seats that left are no longer listed.
  return Object.fromEntries(table?.seats.map((s) => [s.userId, s.chips]) ?? []);
}

describe("replay", () => {
  test("operations let through during an outage are logged in order", async () => {
    // Carol's buy-in reached the service, but (say) its answer was lost: it is logged as well.
    const carolKey = "buy_in:replay-1:carol:1";
    await client.buyIn({ userId: "carol", tableId: "replay-1", amount: 200n }, { idempotencyKey: carolKey });
    await sidecar.stop();
    const lost = new UnreachableError({ code: Code.DeadlineExceeded, message: "answer lost" });
    await new ReconciliationLog(logPath).append({ operation: "buy_in", mode: "shadow", error: lost,
      request: buildRequest("buy_in", { userId: "carol", tableId: "replay-1", amount: 200n }, carolKey) });

    const gate = new BalanceGate({ mode: "shadow", client, reconciliationLog: logPath,
                                   logger: { warn: () => undefined, error: () => undefined } });
    const decisions = [
      await gate.buyIn({ userId: "alice", tableId: "replay-1", amount: 300n }),
      await gate.buyIn({ userId: "bob", tableId: "replay-1", amount: 300n }),
      await gate.settleHand({ tableId: "replay-1", handId: "r1", contributions: { alice: 100n, bob: 100n },
                              payouts: { bob: 190n }, rake: 10n }),
      await gate.cashOut({ tableId: "replay-1", userId: "alice", leave: true }),
    ];
    assert.deepEqual(decisions.map((d) => [d.allowed, d.outcome, d.queued]), Array(4).fill([true, "pending", true]));
    assert.deepEqual((await new ReconciliationLog(logPath).entries()).map((e) => e.operation),
                     ["buy_in", "buy_in", "buy_in", "settle_hand", "cash_out"]);
  });

  test("while the sidecar is still down: exit 1, everything still pending, nothing marked", async () => {
    const run = await balanceReplay();
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /replayed 0, already done 0, refused 0, pending 5/);
    assert.equal((await new ReconciliationLog(logPath).pending()).length, 5);
  });

  test("back up: one run moves everything once, the line that had landed included", async () => {
    await sidecar.restart();
    const run = await balanceReplay();
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /replayed 5, already done 0, refused 0, pending 0/);
    assert.deepEqual(await wallets(), { alice: 900n, bob: 700n, carol: 800n });
    assert.deepEqual(await seats(), { bob: 390n, carol: 200n });
  });

  test("a second run moves nothing", async () => {
    const run = await balanceReplay();
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /replayed 0, already done 5, refused 0, pending 0/);
    assert.deepEqual(await wallets(), { alice: 900n, bob: 700n, carol: 800n });
    assert.deepEqual(await seats(), { bob: 390n, carol: 200n });
  });

  test("a line the service refuses: exit 2, named on stderr, marked, and not sent again", async () => {
    const broke = new UnreachableError({ code: Code.Unavailable, message: "down" });
    const key = "buy_in:replay-1:bob:too-much";
    await new ReconciliationLog(logPath).append({ operation: "buy_in", mode: "enforce", error: broke,
      request: buildRequest("buy_in", { userId: "bob", tableId: "replay-1", amount: 5_000n }, key) });
    const run = await balanceReplay();
    assert.equal(run.status, 2);
    assert.match(run.stderr, new RegExp(`refused: buy_in key=${key} reason=insufficient_funds`));
    assert.match(run.stdout, /replayed 0, already done 5, refused 1, pending 0/);
    const again = await balanceReplay();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already done 6/);
    assert.deepEqual(await wallets(), { alice: 900n, bob: 700n, carol: 800n });
  });

  test("bad arguments: usage and exit 64", async () => {
    const run = await new Promise<Run>((done) => execFile(process.execPath,
      [join(PACKAGE, "dist/bin/replay.js"), logPath], { env: { ...process.env, BALANCE_GRPC_TOKEN: "" } },
      (error, stdout, stderr) => done({ status: Number(error?.code ?? 0), stdout, stderr })));
    assert.equal(run.status, 64);
    assert.match(run.stderr, /usage: balance-replay LOG --target HOST:PORT/);
  });
});
