/** Every RPC of balance.v1.BalanceService through BalanceClient, against a real sidecar. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { BalanceClient, pb } from "@balance/client";

import { Sidecar } from "./support/sidecar.js";

let sidecar: Sidecar;
let client: BalanceClient;
let accounts: Record<string, bigint>;
const BIG = 2n ** 53n + 1n; // the first integer a JS number cannot hold

before(async () => {
  sidecar = await Sidecar.start();
  accounts = await sidecar.fixtures({ wallets: [
    { user: "alice", amount: 5_000n }, { user: "bob", amount: 5_000n }, { user: "carol", amount: 1_000n },
    { user: "whale", amount: BIG }, { user: "dave", amount: 10_000n },
  ] });
  client = new BalanceClient({ target: sidecar.address, token: sidecar.env.token, timeoutMs: 5_000 });
});

after(async () => {
  client.close();
  await sidecar.dispose();
});

async function available(user: string): Promise<bigint | undefined> {
  return (await client.getBalance({ userId: user, currency: "EUR" })).account?.available;
}

describe("tables: open, buy in, settle, cash out, close", () => {
  test("a whole session, every figure checked", async () => {
    const opened = await client.openTable({ tableId: "rpc-1", currency: "EUR" });
    assert.equal(opened.table?.status, pb.TableStatus.OPEN);
    assert.equal(opened.table?.chips, 0n);

    const alice = await client.buyIn({ userId: "alice", tableId: "rpc-1", amount: 1_000n });
    const bob = await client.buyIn({ userId: "bob", tableId: "rpc-1", amount: "1000" });
    assert.equal(alice.seat?.chips, 1_000n);
    assert.equal(alice.seat?.status, pb.SeatStatus.ACTIVE);
    assert.equal(alice.reservation?.status, pb.ReservationStatus.COMMITTED);
    assert.equal(alice.transaction?.kind, "buy_in");
    assert.equal(bob.seat?.chips, 1_000n);

    const settled = await client.settleHand({ tableId: "rpc-1", handId: "h1", contributions: { alice: 200n, bob: 200n },
                                              payouts: { alice: 390n }, rake: 10n });
    assert.equal(settled.handId, "h1");
    const chips = Object.fromEntries(settled.table?.seats.map((s) => [s.userId, s.chips]) ?? []);
    assert.deepEqual(chips, { alice: 1_190n, bob: 800n });
    assert.equal(settled.table?.chips, 1_990n);
    const entries = settled.transaction?.entries ?? [];
    assert.equal(entries.reduce((sum, e) => sum + e.amount, 0n), 0n, "a settlement's entries sum to zero");

    const table = await client.getTable({ tableId: "rpc-1" });
    assert.equal(table.table?.chips, 1_990n);

    const partial = await client.cashOut({ tableId: "rpc-1", userId: "alice", amount: 190n });
    assert.equal(partial.seat?.chips, 1_000n);
    assert.equal(partial.account?.available, 4_190n);
    const aliceOut = await client.cashOut({ tableId: "rpc-1", userId: "alice", leave: true });
    assert.equal(aliceOut.seat?.status, pb.SeatStatus.LEFT);
    assert.equal(aliceOut.account?.balance, 5_190n);
    const bobOut = await client.cashOut({ tableId: "rpc-1", userId: "bob", leave: true });
    assert.equal(bobOut.account?.balance, 4_800n);

    const closed = await client.closeTable({ tableId: "rpc-1" });
    assert.equal(closed.table?.status, pb.TableStatus.CLOSED);
    assert.equal(closed.table?.chips, 0n);
  });
});

describe("reservations: reserve, get, commit, release", () => {
  test("a hold, a partial commit that releases the rest, and a release", async () => {
    await client.openTable({ tableId: "rpc-2", currency: "EUR" });
    const held = (await client.reserve({ userId: "carol", tableId: "rpc-2", amount: 600n, ttlSeconds: 60 })).reservation;
    assert.equal(held?.status, pb.ReservationStatus.PENDING);
    assert.equal(held?.amount, 600n);
    assert.equal(await available("carol"), 400n);
    const balance = await client.getBalance({ userId: "carol", currency: "EUR" });
    assert.deepEqual([balance.account?.balance, balance.account?.held], [1_000n, 600n]);

    const got = await client.getReservation({ reservationId: held?.id ?? 0n });
    assert.equal(got.reservation?.id, held?.id);
    assert.equal(got.reservation?.tableId, "rpc-2");

    const committed = await client.commitReservation({ reservationId: held?.id ?? 0n, amount: 450n });
    assert.equal(committed.reservation?.status, pb.ReservationStatus.COMMITTED);
    assert.equal(committed.reservation?.committedAmount, 450n);
    assert.equal(committed.seat?.chips, 450n);
    assert.equal(await available("carol"), 550n);

    const second = (await client.reserve({ userId: "carol", tableId: "rpc-2", amount: 100n })).reservation;
    const released = await client.releaseReservation({ reservationId: second?.id ?? 0n, reason: "seat taken" });
    assert.equal(released.reservation?.status, pb.ReservationStatus.RELEASED);
    assert.equal(await available("carol"), 550n);
  });
});

describe("accounts: balances and history", () => {
  test("GetBalance by wallet and by account id carries int64 above 2^53 exactly", async () => {
    const byWallet = await client.getBalance({ userId: "whale", currency: "EUR" });
    assert.equal(byWallet.account?.balance, BIG);
    assert.equal(byWallet.account?.kind, "user");
    assert.equal(byWallet.account?.ownerRef, "whale");
    assert.ok(["cache", "database"].includes(byWallet.source));
    const byId = await client.getBalance({ accountId: accounts["whale"] ?? 0n });
    assert.equal(byId.account?.available, BIG);
    await client.openTable({ tableId: "rpc-3", currency: "EUR" });
    const seated = await client.buyIn({ userId: "whale", tableId: "rpc-3", amount: BIG - 1n });
    assert.equal(seated.seat?.chips, BIG - 1n);
    assert.equal(await available("whale"), 1n);
  });

  test("ListTransactions pages the wallet's entries newest first, by cursor", async () => {
    await client.openTable({ tableId: "rpc-4", currency: "EUR" });
    for (const amount of [100n, 200n, 300n]) {
      await client.buyIn({ userId: "dave", tableId: "rpc-4", amount });
    }
    const wallet = accounts["dave"] ?? 0n;
    const first = await client.listTransactions({ accountId: wallet, limit: 2 });
    assert.deepEqual(first.items.map((i) => i.amount), [-300n, -200n]);
    assert.deepEqual(first.items.map((i) => i.balanceAfter), [9_400n, 9_700n]);
    assert.notEqual(first.nextCursor, "");
    const rest = await client.listTransactions({ accountId: wallet, cursor: first.nextCursor, limit: 10 });
    assert.deepEqual(rest.items.map((i) => i.amount), [-100n, 10_000n]);
    assert.equal(rest.items.at(-1)?.kind, "deposit");
    assert.equal(rest.nextCursor, "");
  });
});

describe("idempotency", () => {
  test("the same key and request get the first answer again, and money moves once", async () => {
    await client.openTable({ tableId: "rpc-5", currency: "EUR" });
    const before = await available("bob");
    const key = "buy_in:rpc-5:bob:1";
    const first = await client.buyIn({ userId: "bob", tableId: "rpc-5", amount: 300n }, { idempotencyKey: key });
    const again = await client.buyIn({ userId: "bob", tableId: "rpc-5", amount: 300n }, { idempotencyKey: key });
    assert.equal(again.transaction?.id, first.transaction?.id);
    assert.equal(again.seat?.chips, 300n);
    assert.equal(await available("bob"), (before ?? 0n) - 300n);
  });
});
