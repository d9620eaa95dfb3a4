/**
 * The client's balance read cache: the last balance the service gave, for when it cannot be reached.
 *
 * Only a read that got no answer (UnreachableError) falls back to it, and only to an entry younger
 * than `maxStalenessMs`; the answer then says it is stale and how old it is. An entry is dropped as
 * soon as this client sends a mutation naming its player (whatever its outcome), so the cache never
 * serves a balance older than a change this client could know of.
 */
import type { GetBalanceResponse } from "./gen/balance/v1/balance_pb.js";

export const DEFAULT_MAX_STALENESS_MS = 5_000;

/** A balance as read: fresh from the service, or (`stale`) from the cache, `ageMs` old. */
export interface BalanceRead {
  response: GetBalanceResponse;
  stale: boolean;
  ageMs: number;
}

export type CacheKey = { accountId: bigint } | { userId: string; currency: string };

export class BalanceCache {
  readonly maxStalenessMs: number;
  private readonly entries = new Map<string, { response: GetBalanceResponse; readAt: number }>();
  private readonly clock: () => number;

  constructor(maxStalenessMs = DEFAULT_MAX_STALENESS_MS, clock: () => number = () => performance.now()) {
    if (!(maxStalenessMs >= 0)) {
      throw new RangeError("maxStalenessMs must be 0 (no cache) or more");
    }
    this.maxStalenessMs = maxStalenessMs;
    this.clock = clock;
  }

  store(response: GetBalanceResponse): void {
    const account = response.account;
    if (this.maxStalenessMs === 0 || account === undefined) {
      return;
    }
    const entry = { response, readAt: this.clock() };
    this.entries.set(keyOf({ accountId: account.id }), entry);
    this.entries.set(keyOf({ userId: account.ownerRef, currency: account.currency }), entry);
  }

  lookup(key: CacheKey): BalanceRead | undefined {
    const entry = this.entries.get(keyOf(key));
    if (entry === undefined) {
      return undefined;
    }
    const ageMs = this.clock() - entry.readAt;
    return ageMs > this.maxStalenessMs ? undefined : { response: entry.response, stale: true, ageMs };
  }

  forgetPlayers(userIds: Iterable<string>): void {
    const users = new Set([...userIds].filter((user) => user !== ""));
    if (users.size === 0) {
      return;
    }
    for (const [key, entry] of this.entries) {
      if (users.has(entry.response.account?.ownerRef ?? "")) {
        this.entries.delete(key);
      }
    }
  }
}

function keyOf(key: CacheKey): string {
  return "accountId" in key ? `id:${key.accountId}` : `wallet:${key.userId}\u0000${key.currency}`;
}

/** The players a mutation request names: its user, and a settlement's contributors and winners. */
export function playersOf(request: object): string[] {
  const fields = request as { userId?: unknown; contributions?: unknown; payouts?: unknown };
  const players = typeof fields.userId === "string" ? [fields.userId] : [];
  for (const map of [fields.contributions, fields.payouts]) {
    if (map !== null && typeof map === "object") {
      players.push(...Object.keys(map));
    }
  }
  return players;
}
