// Small validators for parseConfig: each checks one value, records `path: message` issues and never throws.

import { isIPv4, isIPv6 } from 'node:net'
import { isLoopbackHost } from '../http/urls.ts'

/** Where a validator records what is wrong, one `path: message` string per problem. */
export type Issues = string[]

/** A mapping read from the config file, with its own path for issue messages. */
export type RawObject = Readonly<Record<string, unknown>>

/** Joins a path and a key, quoting keys that are not plain identifiers (`headers["X Y"]`). */
export function joinPath (path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  const segment = /^[A-Za-z0-9_-]+$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
  return path === '' ? segment.replace(/^\./, '') : `${path}${segment}`
}

/** Describes a value for an issue message without dumping large structures. */
export function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)
  return `${typeof value} ${String(value)}`
}

/** Records `path: expected X, got Y`, with a quoting hint when YAML turned text into a number or boolean. */
export function expected (what: string, value: unknown, path: string, issues: Issues): void {
  const hint = (typeof value === 'number' || typeof value === 'boolean') && /^(a (non-empty )?string\b|\d+ digits)/.test(what)
    ? ` (put it in quotes: "${String(value)}")`
    : ''
  issues.push(`${path}: expected ${what}, got ${describe(value)}${hint}`)
}

/** True for a plain mapping (not null, not a list). */
export function isRecord (value: unknown): value is RawObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Narrows to a mapping; records an issue and returns undefined otherwise. */
export function asObject (value: unknown, path: string, issues: Issues): RawObject | undefined {
  if (isRecord(value)) return value
  if (value === undefined) issues.push(`${path}: required`)
  else expected('a mapping', value, path, issues)
  return undefined
}

/** Like asObject, but an absent or empty (`key:` with every child commented out, i.e. null) section is an empty mapping. */
export function asOptionalObject (value: unknown, path: string, issues: Issues): RawObject | undefined {
  return value === undefined || value === null ? {} : asObject(value, path, issues)
}

/** Records `unknown key` for every key not in `allowed`, suggesting the closest allowed key. */
export function checkKeys (object: RawObject, allowed: readonly string[], path: string, issues: Issues): void {
  for (const key of Object.keys(object)) {
    if (allowed.includes(key)) continue
    const suggestion = closest(key, allowed)
    issues.push(`${joinPath(path, key)}: unknown key${suggestion === undefined ? ` (allowed: ${allowed.join(', ')})` : `; did you mean "${suggestion}"?`}`)
  }
}

function closest (key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) { best = candidate; bestDistance = distance }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/** A non-empty string; records an issue otherwise. */
export function asNonEmptyString (value: unknown, path: string, issues: Issues): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value
  if (value === undefined) issues.push(`${path}: required`)
  else expected('a non-empty string', value, path, issues)
  return undefined
}

/** An integer in [min, max], or `fallback` when absent; records an issue otherwise. */
export function asInteger (value: unknown, fallback: number, range: { readonly min: number, readonly max: number }, path: string, issues: Issues): number {
  if (value === undefined) return fallback
  if (typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max) return value
  expected(range.max === Number.MAX_SAFE_INTEGER ? `an integer >= ${range.min}` : `an integer from ${range.min} to ${range.max}`, value, path, issues)
  return fallback
}

/** A positive integer in milliseconds, or `fallback` when absent. */
export function asPositiveMs (value: unknown, fallback: number, path: string, issues: Issues): number {
  return asInteger(value, fallback, { min: 1, max: Number.MAX_SAFE_INTEGER }, path, issues)
}

/** One of `choices`, or `fallback` when absent; records an issue otherwise. */
export function asChoice<T extends string> (value: unknown, choices: readonly T[], fallback: T, path: string, issues: Issues): T {
  if (value === undefined) return fallback
  const match = choices.find(choice => choice === value)
  if (match !== undefined) return match
  expected(`one of ${choices.join(' | ')}`, value, path, issues)
  return fallback
}

/** Options for asUrl: which schemes are allowed beyond https, and whether a path is allowed. */
export interface UrlRules {
  /** Allow http:// for any host (egress proxies); otherwise http:// is only for loopback hosts. */
  readonly isHttpAllowed?: boolean
  readonly isPathAllowed?: boolean
}

/** An absolute http(s) URL without credentials, query or fragment; returned normalised without a trailing slash. */
export function asUrl (value: unknown, rules: UrlRules, path: string, issues: Issues): string | undefined {
  const text = asNonEmptyString(value, path, issues)
  if (text === undefined) return undefined
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    issues.push(`${path}: expected an absolute URL such as https://host.example, got ${describe(text)}`)
    return undefined
  }
  const before = issues.length
  if (url.protocol === 'http:') {
    if (rules.isHttpAllowed !== true && !isLoopbackHost(url.hostname)) issues.push(`${path}: http:// is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https://`)
  } else if (url.protocol !== 'https:') {
    issues.push(`${path}: expected an http:// or https:// URL, got ${describe(text)}`)
    return undefined
  }
  if (url.username !== '' || url.password !== '') issues.push(`${path}: credentials are not allowed in a URL; secrets do not belong in the config file`)
  if (url.href.includes('?')) issues.push(`${path}: a query string is not allowed`)
  if (url.href.includes('#')) issues.push(`${path}: a fragment is not allowed`)
  if (rules.isPathAllowed === false && url.pathname !== '/') issues.push(`${path}: a path is not allowed, got ${describe(url.pathname)}`)
  return issues.length === before ? url.href.replace(/\/+$/, '') : undefined
}

/** A `host:port` listen address (`[::1]:8480` for IPv6); `fallback` when absent. */
export function asListenAddress (value: unknown, fallback: string, path: string, issues: Issues): { host: string, port: number } | undefined {
  const text = value === undefined ? fallback : value
  if (typeof text !== 'string') {
    expected('a "host:port" string such as "127.0.0.1:8480"', text, path, issues)
    return undefined
  }
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text)
  const host = match?.[1]
  const port = Number(match?.[2])
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    issues.push(`${path}: expected "host:port" with a port from 0 to 65535 (IPv6 as "[::1]:8480"), got ${describe(text)}`)
    return undefined
  }
  const isBracketed = text.startsWith('[')
  const isValidHost = isBracketed ? isIPv6(host) : isIPv4(host) || /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)
  if (!isValidHost) {
    issues.push(`${path}: ${describe(host)} is not an ${isBracketed ? 'IPv6 address' : 'IPv4 address or host name'}`)
    return undefined
  }
  return { host, port }
}

/** Formats a listen address back to `host:port`, bracketing IPv6. */
export function formatListenAddress (address: { readonly host: string, readonly port: number }): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** Freezes a value and everything it holds. */
export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
