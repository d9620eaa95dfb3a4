/**
 * When and how long to wait before trying a call again. Every retry carries the same idempotency
 * key as the first attempt, so retrying is safe for mutations too.
 */
import { Code } from "@connectrpc/connect";

import type { BalanceError } from "./errors.js";

export interface RetryPolicy {
  /** Attempts in all, the first included (default 4). */
  maxAttempts: number;
  /** Ceiling of the first pause, in ms (default 50); doubles (`multiplier`) up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  /**
   * Deadline of one attempt, in ms, within the call's deadline. Unset: an attempt may use all the
   * time left. Set it below the call's deadline so that an attempt lost in a hung connection or a
   * stalled server ends DEADLINE_EXCEEDED and is retried (same key) while time remains.
   */
  attemptTimeoutMs?: number | undefined;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 50,
  maxBackoffMs: 1000,
  multiplier: 2,
});

// RESOURCE_EXHAUSTED: the sidecar is at its cap of calls in flight (GRPC_MAX_CONCURRENT_RPCS); backing off helps.
const RETRYABLE_CODES: ReadonlySet<Code> = new Set([
  Code.Unavailable, Code.Aborted, Code.DeadlineExceeded, Code.ResourceExhausted,
]);
// ABORTED idempotency_conflict: the key was used for a different request; retrying cannot help.
const FINAL_REASONS: ReadonlySet<string> = new Set(["idempotency_conflict"]);

export function isRetryable(error: BalanceError): boolean {
  return RETRYABLE_CODES.has(error.code) && !FINAL_REASONS.has(error.reason);
}

/** Full jitter: uniform in [0, min(max, initial * multiplier ** retryNumber)]. */
export function backoffMs(policy: RetryPolicy, retryNumber: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** retryNumber);
  return random() * ceiling;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
