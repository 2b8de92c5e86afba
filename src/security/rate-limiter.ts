// Token buckets per key (caller name or client address): sustained rate, burst, and the wait for Retry-After.

import { LRUCache } from 'lru-cache'
import type { Clock } from '../clock.ts'
import type { RateLimitConfig } from '../config/config.ts'

export type RateVerdict = { readonly isAllowed: true } | { readonly isAllowed: false, readonly retryAfterSeconds: number }

/** Takes one token for `key` (with `isPeek`, only looks); answers how many seconds to wait when none is left. */
export type RateLimiter = (key: string, limit: RateLimitConfig, isPeek?: boolean) => RateVerdict

/** Creates a bounded set of buckets (the least recently used are forgotten: a forgotten bucket is full again). */
export function createRateLimiter (clock: Clock, maxKeys = 10_000): RateLimiter {
  const buckets = new LRUCache<string, { tokens: number, updatedAtMs: number }>({ max: maxKeys })
  return (key, limit, isPeek = false) => {
    const nowMs = clock.nowMs()
    const bucket = buckets.get(key) ?? { tokens: limit.burst, updatedAtMs: nowMs }
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (nowMs - bucket.updatedAtMs) / 1000 * limit.requestsPerSecond)
    bucket.updatedAtMs = nowMs
    buckets.set(key, bucket)
    if (bucket.tokens >= 1) {
      if (!isPeek) bucket.tokens -= 1
      return { isAllowed: true }
    }
    return { isAllowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / limit.requestsPerSecond)) }
  }
}
