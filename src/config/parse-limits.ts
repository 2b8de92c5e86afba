// Parses the protective limits: body and header sizes, timeouts, upstream concurrency and rate limits.

import type { LimitsConfig, RateLimitConfig } from './config.ts'
import { defaultLimits } from './defaults.ts'
import { asInteger, asOptionalObject, checkKeys, expected, isRecord, joinPath, type Issues } from './parse-helpers.ts'

/** The longest delay a Node.js timer can hold (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const maxTimerMs = 2_147_483_647
/** Upper bound of requestsPerSecond and burst. */
export const maxRate = 1_000_000

/** Parses the optional `limits` section; every absent value comes from defaultLimits. */
export function parseLimits (value: unknown, issues: Issues): LimitsConfig {
  const raw = asOptionalObject(value, 'limits', issues) ?? {}
  checkKeys(raw, ['maxBodyBytes', 'maxHeaderBytes', 'requestTimeoutMs', 'idleTimeoutMs', 'maxConcurrentUpstream', 'rateLimit'], 'limits', issues)
  return {
    maxBodyBytes: asInteger(raw.maxBodyBytes, defaultLimits.maxBodyBytes, { min: 1, max: 1024 * 1024 * 1024 }, 'limits.maxBodyBytes', issues),
    maxHeaderBytes: asInteger(raw.maxHeaderBytes, defaultLimits.maxHeaderBytes, { min: 1024, max: 1024 * 1024 }, 'limits.maxHeaderBytes', issues),
    requestTimeoutMs: asInteger(raw.requestTimeoutMs, defaultLimits.requestTimeoutMs, { min: 1, max: maxTimerMs }, 'limits.requestTimeoutMs', issues),
    idleTimeoutMs: asInteger(raw.idleTimeoutMs, defaultLimits.idleTimeoutMs, { min: 1, max: maxTimerMs }, 'limits.idleTimeoutMs', issues),
    maxConcurrentUpstream: asInteger(raw.maxConcurrentUpstream, defaultLimits.maxConcurrentUpstream, { min: 1, max: 100_000 }, 'limits.maxConcurrentUpstream', issues),
    rateLimit: parseRateLimit(raw.rateLimit, 'limits.rateLimit', issues) ?? defaultLimits.rateLimit
  }
}

/**
 * Parses `{ requestsPerSecond, burst }` (both required): a positive number of requests per second and a
 * whole burst size ≥ 1. Undefined when absent or invalid (the issue is recorded).
 */
export function parseRateLimit (value: unknown, path: string, issues: Issues): RateLimitConfig | undefined {
  if (value === undefined) return undefined
  if (!isRecord(value)) { expected('a mapping { requestsPerSecond, burst }', value, path, issues); return undefined }
  const before = issues.length
  checkKeys(value, ['requestsPerSecond', 'burst'], path, issues)
  const ratePath = joinPath(path, 'requestsPerSecond')
  const rate = value.requestsPerSecond
  if (rate === undefined) issues.push(`${ratePath}: required (requests per second, e.g. 20 or 0.5)`)
  else if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > maxRate) expected(`a number above 0 and at most ${maxRate}`, rate, ratePath, issues)
  const burstPath = joinPath(path, 'burst')
  if (value.burst === undefined) issues.push(`${burstPath}: required (how many requests may come at once, e.g. 40)`)
  const burst = asInteger(value.burst, 0, { min: 1, max: maxRate }, burstPath, issues)
  if (issues.length !== before || typeof rate !== 'number') return undefined
  return { requestsPerSecond: rate, burst }
}
