// Exponential backoff with full jitter for retryable token fetch failures.

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/** Delay before attempt `attempt + 1`: random in [cap/2, cap], cap = min(max, base·2^(attempt-1)). */
export function backoffDelayMs (policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const capMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(capMs / 2 + random() * capMs / 2)
}
