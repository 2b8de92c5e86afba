// Defaults for the protective limits, in one place: the config parser and the built-in demo use them.

import type { KeysConfig, LimitsConfig } from './config.ts'

/** What the proxy listener allows unless the config says otherwise. */
export const defaultLimits: LimitsConfig = {
  maxBodyBytes: 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  maxConcurrentUpstream: 256,
  rateLimit: { requestsPerSecond: 100, burst: 200 }
}

/** Key expiry monitoring and rotation unless the config says otherwise. */
export const defaultKeys: KeysConfig = {
  warnDays: 30,
  expiryCheckHours: 12,
  autoRotate: false,
  rotateDays: 60
}
