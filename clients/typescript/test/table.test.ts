/**
 * TableAdapter against a real sidecar: joinSeat's two phases, leaveSeat and settleShowdown, each
 * idempotent across retries and a poker-process restart (a new client and adapter sending the same
 * calls), and joinSeat in each rollout mode while the sidecar is down, before or after the hold.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { BalanceClient, joinKeys, pb, ReconciliationLog, replay, TableAdapter } from "@balance/client";
import type { GateLogger, RolloutMode } from "@balance/client";

import { Sidecar } from "./support/sidecar.js";

let sidecar: Sidecar;
let dir: string;
const clients: BalanceClient[] = [];
const quiet: GateLogger = { warn: () => undefined, error: () => undefined };

before(async () => {
  sidecar = await Sidecar.start();
  await sidecar.fixtures({ wallets: ["alice", "bob", "carol", "dan", "erin", "fay", "gus", "hal"]
    .map((user) => ({ user, amount: 1_000n })) });
  await newClient().openTable({ tableId: "t1", currency: "EUR" });
  dir = await mkdtemp(join(tmpdir(), "balance-table-"));
});

after(async () => {
  clients.forEach((c) => c.close());
  await sidecar.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A new client is what a restarted poker process has: nothing remembered in memory. */
function newClient(): BalanceClient {
  const client = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 1_500,
                                     retry: { maxAttempts: 3, initialBackoffMs: 20 } });
  clients.push(client);
  return client;
}

function adapter(mode: RolloutMode = "enforce", permissiveFallback = false, log = "recon.jsonl"): TableAdapter {
  return new TableAdapter({ mode, client: newClient(), permissiveFallback, logger: quiet,
                            reconciliationLog: join(dir, log) });
}

async function wallet(user: string): Promise<pb.Account | undefined> {
  return (await newClient().getBalance({ userId: user, currency: "EUR" })).account;
}

async function chips(user: string): Promise<bigint | undefined> {
  const table = (await newClient().getTable({ tableId: "t1" })).table;
  return table?.seats.find((s) => s.userId === user)?.chips;
}

describe("joinSeat", () => {
  test("reserves, lets the poker side confirm, commits: the seat has the chips", async () => {
    const holds: (pb.Reservation | undefined)[] = [];
    const joined = await adapter().joinSeat({ tableId: "t1", userId: "alice", amount: 400n, sessionId: "s-a1",
                                              confirm: (hold) => { holds.push(hold); return true; } });
    assert.deepEqual([joined.seated, joined.outcome, joined.queued], [true, "committed", false]);
    assert.equal(holds[0]?.status, pb.ReservationStatus.PENDING, "confirm sees the hold before the commit");
    assert.equal(joined.reservation?.status, pb.ReservationStatus.COMMITTED);
    assert.equal(joined.seat?.chips, 400n);
    assert.deepEqual(joined.keys, joinKeys("t1", "alice", "s-a1"));
    const account = await wallet("alice");
    assert.deepEqual([account?.balance, account?.held], [600n, 0n]);
  });

  test("a seat the poker side does not confirm releases the hold", async () => {
    const joined = await adapter().joinSeat({ tableId: "t1", userId: "bob", amount: 400n, sessionId: "s-b1",
                                              confirm: () => false });
    assert.deepEqual([joined.seated, joined.outcome], [false, "declined"]);
    const hold = await newClient().getReservation({ reservationId: joined.reservation?.id ?? 0n });
    assert.equal(hold.reservation?.status, pb.ReservationStatus.RELEASED);
    const thrown = new Error("seat taken");
    await assert.rejects(adapter().joinSeat({ tableId: "t1", userId: "bob", amount: 400n, sessionId: "s-b2",
                                              confirm: () => { throw thrown; } }), thrown);
    const after = await wallet("bob");
    assert.deepEqual([after?.balance, after?.held], [1_000n, 0n]);
  });

  test("a refusal seats no one and never asks the poker side", async () => {
    let asked = false;
    const joined = await adapter().joinSeat({ tableId: "t1", userId: "carol", amount: 5_000n, sessionId: "s-c1",
                                              confirm: () => { asked = true; return true; } });
    assert.deepEqual([joined.seated, joined.outcome, joined.reason, asked], [false, "refused", "insufficient_funds", false]);
  });

  test("after a poker-process restart the same sessionId picks up the same hold, and the money moves once", async () => {
    // The first process reserved, then died before committing.
    const keys = joinKeys("t1", "dan", "s-d1");
    const first = await newClient().reserve({ userId: "dan", tableId: "t1", amount: 300n }, { idempotencyKey: keys.reserve });
    const resumed = await adapter().joinSeat({ tableId: "t1", userId: "dan", amount: 300n, sessionId: "s-d1" });
    assert.deepEqual([resumed.seated, resumed.outcome], [true, "committed"]);
    assert.equal(resumed.reservation?.id, first.reservation?.id);
    // And once more, as if it died again before recording the seat.
    const again = await adapter().joinSeat({ tableId: "t1", userId: "dan", amount: 300n, sessionId: "s-d1" });
    assert.deepEqual([again.outcome, again.reservation?.id], ["committed", first.reservation?.id]);
    assert.equal((await wallet("dan"))?.balance, 700n);
    assert.equal(await chips("dan"), 300n);
  });
});

describe("settleShowdown and leaveSeat", () => {
  test("a hand settles once with its rake, however often it is sent; the seats cash out once", async () => {
    const hand = { tableId: "t1", handId: "1001", contributions: { alice: 100n, dan: 100n }, payouts: { alice: 190n }, rake: 10n };
    const settled = await adapter().settleShowdown(hand);
    assert.deepEqual([settled.allowed, settled.outcome], [true, "ok"]);
    assert.equal(settled.idempotencyKey, "settle_hand:t1:hand-1001:1001");
    const resent = await adapter().settleShowdown(hand);
    assert.equal(resent.response?.transaction?.id, settled.response?.transaction?.id);
    assert.deepEqual([await chips("alice"), await chips("dan")], [490n, 200n]);
    assert.equal(settled.response?.table?.chips, 690n, "the rake left the table");

    const left = await adapter().leaveSeat({ tableId: "t1", userId: "alice", sessionId: "s-a1" });
    assert.deepEqual([left.allowed, left.outcome, left.response?.seat?.status], [true, "ok", pb.SeatStatus.LEFT]);
    const leftAgain = await adapter().leaveSeat({ tableId: "t1", userId: "alice", sessionId: "s-a1" });
    assert.equal(leftAgain.response?.transaction?.id, left.response?.transaction?.id);
    assert.equal((await wallet("alice"))?.balance, 1_090n);
  });
});

describe("joinSeat with the sidecar down", () => {
  test("before the hold: off seats, shadow and permissive seat and queue a buy-in, enforce waits", async () => {
    await sidecar.stop();
    const asked: string[] = [];
    // The strict gate keeps its own log: on down.jsonl it would wait behind fay's queued buy-in (queued_behind).
    const logOf = (mode: RolloutMode, permissive: boolean) => mode === "enforce" && !permissive ? "down-strict.jsonl" : "down.jsonl";
    const sitDown = (mode: RolloutMode, user: string, permissive = false) => adapter(mode, permissive, logOf(mode, permissive)).joinSeat({
      tableId: "t1", userId: user, amount: 250n, sessionId: `s-${user}`,
      confirm: (hold) => { asked.push(`${user}:${hold === undefined}`); return true; },
    });
    const off = await sitDown("off", "erin");
    const shadow = await sitDown("shadow", "fay");
    const strict = await sitDown("enforce", "gus");
    const permissive = await sitDown("enforce", "hal", true);
    assert.deepEqual([off.seated, off.outcome, off.queued], [true, "skipped", false]);
    assert.deepEqual([shadow.seated, shadow.outcome, shadow.queued], [true, "pending", true]);
    assert.deepEqual([strict.seated, strict.outcome, strict.reason, strict.queued], [false, "pending", "UNAVAILABLE", false]);
    assert.deepEqual([permissive.seated, permissive.outcome, permissive.queued], [true, "pending", true]);
    assert.deepEqual(asked, ["erin:true", "fay:true", "hal:true"], "enforce asks nobody while it has no verdict");
    const log = new ReconciliationLog(join(dir, "down.jsonl"));
    assert.deepEqual((await log.entries()).map((e) => [e.operation, e.idempotency_key]),
                     [["buy_in", "buy_in:t1:fay:s-fay"], ["buy_in", "buy_in:t1:hal:s-hal"]]);

    await sidecar.restart();
    const report = await replay(log, newClient());
    assert.deepEqual([report.replayed, report.pending, report.refused.length], [2, 0, 0]);
    // The join that waited is sent again with the same sessionId and now gets its verdict.
    const retried = await adapter().joinSeat({ tableId: "t1", userId: "gus", amount: 250n, sessionId: "s-gus" });
    assert.deepEqual([retried.seated, retried.outcome], [true, "committed"]);
    assert.deepEqual([await chips("fay"), await chips("gus"), await chips("hal"), await chips("erin")],
                     [250n, 250n, 250n, undefined]);
  });

  test("after the hold: a commit with no verdict is queued as the commit itself (permissive) or waits (enforce)", async () => {
    const stopThenConfirm = async (): Promise<boolean> => {
      await sidecar.stop();
      return true;
    };
    const permissive = await adapter("enforce", true, "commit.jsonl").joinSeat({
      tableId: "t1", userId: "bob", amount: 100n, sessionId: "s-b3", confirm: stopThenConfirm });
    assert.deepEqual([permissive.seated, permissive.outcome, permissive.queued], [true, "pending", true]);
    await sidecar.restart();
    const strict = await adapter("enforce").joinSeat({
      tableId: "t1", userId: "carol", amount: 100n, sessionId: "s-c2", confirm: stopThenConfirm });
    // Held back, and queued for the outbox (let_through false): its answer will come to onAnswer.
    assert.deepEqual([strict.seated, strict.outcome, strict.queued], [false, "pending", true]);
    const held = await new ReconciliationLog(join(dir, "recon.jsonl")).pending();
    assert.deepEqual(held.map((e) => [e.operation, e.idempotency_key, e.let_through]),
                     [["commit_reservation", "commit_reservation:t1:carol:s-c2", false]]);
    await sidecar.restart();

    const log = new ReconciliationLog(join(dir, "commit.jsonl"));
    assert.deepEqual((await log.entries()).map((e) => [e.operation, e.idempotency_key]),
                     [["commit_reservation", "commit_reservation:t1:bob:s-b3"]]);
    assert.equal((await replay(log, newClient())).replayed, 1);
    const learned = await adapter().joinSeat({ tableId: "t1", userId: "carol", amount: 100n, sessionId: "s-c2" });
    assert.deepEqual([learned.seated, learned.outcome], [true, "committed"]);
    assert.deepEqual([await chips("bob"), await chips("carol")], [100n, 100n]);
    assert.deepEqual([(await wallet("bob"))?.balance, (await wallet("carol"))?.balance], [900n, 900n]);
  });
});
