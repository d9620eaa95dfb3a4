/**
 * Idempotency keys: `{operation}:{tableId}:{userId}:{timestamp}`, made once per logical operation and
 * reused by every retry of it, so that a retry can never apply the operation twice.
 */

// Nanoseconds since the epoch: the wall clock read once, then the monotonic clock's progress, so the
// value has nanosecond resolution and never goes back when the wall clock is adjusted.
const EPOCH_NS_AT_LOAD = BigInt(Date.now()) * 1_000_000n;
const HRTIME_AT_LOAD = process.hrtime.bigint();
let lastNs = 0n;

/**
 * Strictly increasing within this process, so two operations made in the same instant never share a
 * key (the second would be answered as a replay of the first).
 */
export function uniqueTimestampNs(): bigint {
  const now = EPOCH_NS_AT_LOAD + (process.hrtime.bigint() - HRTIME_AT_LOAD);
  lastNs = now > lastNs ? now : lastNs + 1n;
  return lastNs;
}

/**
 * `buy_in:table-7:alice:1764045600123456789`. Settlements put `hand-<hand id>` in the user slot,
 * reservation calls `reservation-<id>` in the table slot when no table is known. `stamp` replaces the
 * timestamp with an identifier of the caller's that survives a restart (see TableAdapter).
 */
export function idempotencyKey(operation: string, tableId = "", userId = "", stamp?: bigint | string): string {
  return `${operation}:${tableId}:${userId}:${stamp ?? uniqueTimestampNs()}`;
}
