/**
 * A poker table session as the poker service runs it, through @balance/client's TableAdapter: open a
 * table, two players join their seats (reserve, confirm, commit), one showdown is settled with rake,
 * both leave (cash out), the table closes. Every figure is checked as bigint; the process exits
 * non-zero on any failure.
 *
 *   BALANCE_GRPC_TARGET=127.0.0.1:50051 BALANCE_GRPC_TOKEN=bal_... BALANCE_ROLLOUT=enforce \
 *     PLAYERS=alice,bob npm start
 *
 * The players need funded wallets in CURRENCY (default EUR), at least BUY_IN (default 1000) each.
 */
import { randomUUID } from "node:crypto";

import { balanceFromEnv } from "./balanceClient.js";

function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

async function main(): Promise<void> {
  const players = (process.env["PLAYERS"] ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  const currency = process.env["CURRENCY"] ?? "EUR";
  const buyIn = BigInt(process.env["BUY_IN"] ?? "1000");
  const tableId = process.env["TABLE_ID"] ?? `ts-table-${Date.now()}`;
  const [alice, bob] = players;
  check(alice !== undefined && bob !== undefined && players.length === 2, "PLAYERS names two players");
  if (alice === undefined || bob === undefined) {
    return;
  }
  const balance = balanceFromEnv();
  check(balance.tables.mode === "enforce", "BALANCE_ROLLOUT=enforce: this session checks the service's figures");
  const { client, tables } = balance;
  try {
    const wallet = async (user: string): Promise<bigint> =>
      (await client.getBalance({ userId: user, currency })).account?.balance ?? -1n;
    const before = { [alice]: await wallet(alice), [bob]: await wallet(bob) };

    await client.openTable({ tableId, currency });
    console.log(`opened ${tableId} (${currency})`);

    // One seat session id per player, kept by the poker side: it makes every key of the session, so a
    // retry or a restart of this process repeats the same calls instead of making new ones.
    const sessions = { [alice]: randomUUID(), [bob]: randomUUID() };
    for (const user of [alice, bob]) {
      const joined = await tables.joinSeat({
        tableId, userId: user, amount: buyIn, sessionId: sessions[user] ?? "",
        // The poker side's last word on the seat, once the funds are held.
        confirm: (hold) => hold !== undefined && hold.amount === buyIn,
      });
      check(joined.seated && joined.outcome === "committed", `${user} seated (${joined.outcome} ${joined.reason})`);
      check(joined.seat?.chips === buyIn, `${user} has ${buyIn} chips`);
      console.log(`${user} joined seat ${joined.seat?.id} with ${joined.seat?.chips}`);
    }

    const pot = 400n;
    const rake = 10n;
    const hand = await tables.settleShowdown({
      tableId, handId: "1", contributions: { [alice]: pot / 2n, [bob]: pot / 2n }, payouts: { [alice]: pot - rake }, rake,
    });
    check(hand.allowed && hand.outcome === "ok", `hand 1 settled (${hand.reason})`);
    const chips = Object.fromEntries(hand.response?.table?.seats.map((s) => [s.userId, s.chips]) ?? []);
    check(chips[alice] === buyIn + pot / 2n - rake && chips[bob] === buyIn - pot / 2n, "the seats after the hand");
    check(hand.response?.table?.chips === 2n * buyIn - rake, "the rake left the table");
    console.log(`hand 1 settled: ${alice} ${chips[alice]}, ${bob} ${chips[bob]}, rake ${rake}`);

    for (const user of [alice, bob]) {
      const left = await tables.leaveSeat({ tableId, userId: user, sessionId: sessions[user] ?? "" });
      check(left.allowed && left.outcome === "ok", `${user} left (${left.reason})`);
      console.log(`${user} left: wallet ${left.response?.account?.balance}`);
    }
    check(await wallet(alice) === (before[alice] ?? 0n) + pot / 2n - rake, `${alice}'s wallet`);
    check(await wallet(bob) === (before[bob] ?? 0n) - pot / 2n, `${bob}'s wallet`);

    await client.closeTable({ tableId });
    console.log("table session OK");
  } finally {
    balance.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
