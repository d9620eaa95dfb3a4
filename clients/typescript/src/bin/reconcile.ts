#!/usr/bin/env node
/**
 * `balance-reconcile LOG [--target HOST:PORT] [--token TOKEN] [--books BOOKS.json] [--timeout SECONDS]`:
 * where the poker side and the service disagree (see ../reconcile.ts). BOOKS.json is the poker
 * side's stacks, `{"table": {"user": chips}}` (chips as numbers or decimal strings). Exit status 0
 * no disagreement, 1 some, 64 bad arguments.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { BalanceClient } from "../client.js";
import { reconcile } from "../reconcile.js";
import { ReconciliationLog } from "../reconciliation.js";

const USAGE = `usage: balance-reconcile LOG [--target HOST:PORT] [--token TOKEN] [--books BOOKS.json] [--timeout SECONDS]

Reports the lines of the reconciliation log LOG the poker side let through and the service refused
(divergence), the lines still without an answer (unknown), and with --books the seats whose chips
differ. With --target the unanswered lines are resent with their own keys first. The token defaults
to $BALANCE_GRPC_TOKEN. Exit status: 0 no disagreement, 1 some.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        target: { type: "string" }, token: { type: "string" }, books: { type: "string" },
        timeout: { type: "string", default: "5" }, help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`${String(error)}\n\n${USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const token = values.token ?? process.env["BALANCE_GRPC_TOKEN"];
  const timeoutMs = Number(values.timeout) * 1000;
  const [logPath, ...extra] = positionals;
  if (logPath === undefined || extra.length > 0 || !(timeoutMs > 0) || ((values.target || values.books) && !(values.target && token))) {
    console.error(`a log is required; --target and --books need --target and a token\n\n${USAGE}`);
    return 64;
  }
  let books: Record<string, Record<string, bigint>> | undefined;
  if (values.books) {
    const raw = JSON.parse(await readFile(values.books, "utf8")) as Record<string, Record<string, number | string>>;
    books = Object.fromEntries(Object.entries(raw).map(([table, stacks]) =>
      [table, Object.fromEntries(Object.entries(stacks).map(([user, chips]) => [user, BigInt(chips)]))]));
  }
  const client = values.target ? new BalanceClient({ target: values.target, token: token ?? "", timeoutMs }) : undefined;
  try {
    const report = await reconcile(new ReconciliationLog(logPath), client, books, { timeoutMs });
    for (const disagreement of report.disagreements) {
      console.log(`${disagreement.kind}: ${disagreement.detail}`);
    }
    for (const line of report.resolved) {
      console.log(`resolved: ${line}`);
    }
    console.log(`${report.disagreements.length} disagreement(s), ${report.resolved.length} resolved, ${report.agreed} agreed`);
    return report.disagreements.length > 0 ? 1 : 0;
  } finally {
    client?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
