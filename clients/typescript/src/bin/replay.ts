#!/usr/bin/env node
/**
 * `balance-replay LOG --target HOST:PORT [--token TOKEN] [--timeout SECONDS] [--follow SECONDS]`:
 * replays a reconciliation log (see ../replay.ts); `--follow` is the outbox as a process: it replays
 * again every SECONDS until nothing is pending. Exit status 0 done, 1 lines still pending, 2 some lines
 * refused (they need a person), 64 bad arguments.
 */
import { parseArgs } from "node:util";

import { BalanceClient } from "../client.js";
import { ReconciliationLog } from "../reconciliation.js";
import { exitStatus, follow, replay, summary } from "../replay.js";

const USAGE = `usage: balance-replay LOG --target HOST:PORT [--token TOKEN] [--timeout SECONDS] [--follow SECONDS]

Sends every line of the reconciliation log LOG not replayed yet, in order, each with its own
idempotency key, and marks it in LOG.replayed with the answer; --follow replays again every SECONDS
until nothing is pending. The token defaults to $BALANCE_GRPC_TOKEN.
Exit status: 0 done, 1 lines still pending (service unreachable), 2 some lines refused.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        target: { type: "string" }, token: { type: "string" }, timeout: { type: "string", default: "5" },
        follow: { type: "string" }, help: { type: "boolean", short: "h" },
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
  const followMs = values.follow === undefined ? undefined : Number(values.follow) * 1000;
  const [logPath, ...extra] = positionals;
  if (logPath === undefined || extra.length > 0 || !values.target || !token || !(timeoutMs > 0)
      || (followMs !== undefined && !(followMs > 0))) {
    console.error(`a log, --target and a token (--token or $BALANCE_GRPC_TOKEN) are required\n\n${USAGE}`);
    return 64;
  }
  const client = new BalanceClient({ target: values.target, token, timeoutMs });
  try {
    const log = new ReconciliationLog(logPath);
    const report = followMs === undefined ? await replay(log, client, { timeoutMs })
      : await follow(log, client, { timeoutMs, intervalMs: followMs });
    for (const line of report.refused) {
      console.error(`refused: ${line.entry.operation} key=${line.entry.idempotency_key} reason=${line.reason}`);
    }
    console.log(summary(report));
    return exitStatus(report);
  } finally {
    client.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
