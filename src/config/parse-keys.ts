// Parses the optional `keys` section: when to warn about a client key's expiry, how often to read it, and automatic rotation.

import type { KeysConfig } from './config.ts'
import { defaultKeys } from './defaults.ts'
import { maxTimerMs } from './parse-limits.ts'
import { asInteger, asOptionalObject, checkKeys, expected, type Issues } from './parse-helpers.ts'

/** The longest check interval a Node.js timer can hold, in whole hours (596). */
export const maxExpiryCheckHours = Math.floor(maxTimerMs / 3_600_000)

/** Parses `keys: { warnDays, expiryCheckHours, autoRotate, rotateDays }`; every absent value comes from defaultKeys. */
export function parseKeys (value: unknown, issues: Issues): KeysConfig {
  const raw = asOptionalObject(value, 'keys', issues) ?? {}
  checkKeys(raw, ['warnDays', 'expiryCheckHours', 'autoRotate', 'rotateDays'], 'keys', issues)
  return {
    warnDays: asInteger(raw.warnDays, defaultKeys.warnDays, { min: 0, max: 3650 }, 'keys.warnDays', issues),
    expiryCheckHours: asInteger(raw.expiryCheckHours, defaultKeys.expiryCheckHours, { min: 1, max: maxExpiryCheckHours }, 'keys.expiryCheckHours', issues),
    autoRotate: asBoolean(raw.autoRotate, defaultKeys.autoRotate, 'keys.autoRotate', issues),
    rotateDays: asInteger(raw.rotateDays, defaultKeys.rotateDays, { min: 1, max: 3650 }, 'keys.rotateDays', issues)
  }
}

function asBoolean (value: unknown, fallback: boolean, path: string, issues: Issues): boolean {
  if (value === undefined) return fallback
  if (typeof value === 'boolean') return value
  expected('true or false', value, path, issues)
  return fallback
}
