/**
 * The poker service's one module that knows about the balance service: it builds the client and the
 * table adapter from the environment, with the rollout mode as the feature flag.
 *
 *   BALANCE_GRPC_TARGET   host:port of the sidecar (default 127.0.0.1:50051)
 *   BALANCE_GRPC_TOKEN    service token (accounts:read, reservations:write, tables:write)
 *   BALANCE_ROLLOUT       off | shadow | enforce (default off)
 *   BALANCE_PERMISSIVE    1: in enforce mode, let seats through while the service is down
 *   BALANCE_RECON_LOG     the reconciliation log (default ./balance-recon.jsonl): what was let through
 *                         or left pending. The outbox started here resends it in the background;
 *                         `npx balance-replay LOG --target HOST:PORT` does it by hand, and
 *                         `npx balance-reconcile LOG --target HOST:PORT` reports disagreements.
 *
 * A decision with outcome "pending" is no refusal: the money may have moved. Hold the seat as
 * pending; `onAnswer` below gets the service's verdict once the outbox learns it.
 */
import { BalanceClient, parseRolloutMode, TableAdapter } from "@balance/client";

export interface Balance {
  client: BalanceClient;
  tables: TableAdapter;
  close(): void;
}

export function balanceFromEnv(env: NodeJS.ProcessEnv = process.env): Balance {
  const token = env["BALANCE_GRPC_TOKEN"];
  if (!token) {
    throw new Error("BALANCE_GRPC_TOKEN is not set");
  }
  const client = new BalanceClient({
    target: env["BALANCE_GRPC_TARGET"] ?? "127.0.0.1:50051",
    token,
    // A seat operation waits at most 2 s for the service, retries included.
    timeoutMs: 2_000,
  });
  const tables = new TableAdapter({
    client,
    mode: parseRolloutMode(env["BALANCE_ROLLOUT"], "off"),
    permissiveFallback: env["BALANCE_PERMISSIVE"] === "1",
    reconciliationLog: env["BALANCE_RECON_LOG"] ?? "balance-recon.jsonl",
  });
  if (tables.mode !== "off") {
    tables.gate.startOutbox({
      intervalMs: 1_000,
      // Where the poker side settles a seat it held as pending (here: only said).
      onAnswer: (line, mark) => console.log(`balance ${line.operation} ${line.idempotency_key}: ${mark.outcome} ${mark.reason}`),
    });
  }
  return { client, tables, close: () => { void tables.gate.stopOutbox(); client.close(); } };
}
