// Parses the config's `apis` section: upstream base URLs, scopes, static headers, timeouts and allowlists.

import type { ApiConfig } from './config.ts'
import { asObject, asPositiveMs, asUrl, checkKeys, expected, isRecord, joinPath, type Issues } from './parse-helpers.ts'
import { parseRouteRules } from './parse-route-rules.ts'

/** API and tenant names are URL path segments: lowercase letters, digits, `_` and `-`. */
export const namePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** Default time to wait for upstream response headers and between body chunks. */
export const defaultApiTimeoutMs = 30_000
/** Default time to wait for a TCP/TLS connection to the upstream. */
export const defaultApiConnectTimeoutMs = 5_000

// The broker sets or strips these itself (PRODUCT.md, proxy listener); a static value would break or leak.
const reservedHeaders = new Set([
  'authorization', 'dpop', 'host', 'cookie', 'connection', 'transfer-encoding', 'content-length',
  'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade'
])
const headerNamePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // RFC 9110 §5.6.2 token
const headerValuePattern = /^[\t\x20-\x7e\x80-\xff]*$/ // RFC 9110 §5.5: no CR, LF or NUL

/** Records an issue unless `name` can be used as a URL segment; `why` tells the reader where the name is used. */
export function checkName (name: string, kind: string, path: string, issues: Issues, why = 'it is a URL path segment'): boolean {
  if (namePattern.test(name)) return true
  issues.push(`${path}: ${kind} name ${JSON.stringify(name)} must be 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit (${why})`)
  return false
}

/** Parses the `apis` mapping; returns only the APIs that parsed cleanly. */
export function parseApis (value: unknown, issues: Issues): Record<string, ApiConfig> {
  const apis = asObject(value, 'apis', issues)
  if (apis === undefined) return {}
  if (Object.keys(apis).length === 0) issues.push('apis: at least one API is required')
  const entries: Array<[string, ApiConfig]> = []
  for (const [name, raw] of Object.entries(apis)) {
    const path = joinPath('apis', name)
    const isNameOk = checkName(name, 'API', path, issues)
    const api = parseApi(name, raw, path, issues)
    if (isNameOk && api !== undefined) entries.push([name, api])
  }
  return Object.fromEntries(entries)
}

function parseApi (name: string, value: unknown, path: string, issues: Issues): ApiConfig | undefined {
  const raw = asObject(value, path, issues)
  if (raw === undefined) return undefined
  const before = issues.length
  checkKeys(raw, ['url', 'scopes', 'headers', 'timeoutMs', 'connectTimeoutMs', 'allow'], path, issues)
  const url = asUrl(raw.url, {}, joinPath(path, 'url'), issues)
  const api: ApiConfig = {
    name,
    url: url ?? '',
    scopes: parseScopes(raw.scopes, joinPath(path, 'scopes'), issues),
    headers: parseHeaders(raw.headers, joinPath(path, 'headers'), issues),
    timeoutMs: asPositiveMs(raw.timeoutMs, defaultApiTimeoutMs, joinPath(path, 'timeoutMs'), issues),
    connectTimeoutMs: asPositiveMs(raw.connectTimeoutMs, defaultApiConnectTimeoutMs, joinPath(path, 'connectTimeoutMs'), issues),
    allow: parseRouteRules(raw.allow, joinPath(path, 'allow'), issues)
  }
  return issues.length === before ? api : undefined
}

function parseScopes (value: unknown, path: string, issues: Issues): string[] {
  if (value === undefined) { issues.push(`${path}: required (a list of scopes, e.g. [nhn:hgd-persontjenesten-api/restricted-access])`); return [] }
  if (!Array.isArray(value)) { expected('a list of scopes', value, path, issues); return [] }
  if (value.length === 0) issues.push(`${path}: at least one scope is required`)
  const scopes: string[] = []
  value.forEach((scope: unknown, index) => {
    const scopePath = joinPath(path, index)
    if (typeof scope !== 'string' || scope === '') expected('a non-empty string', scope, scopePath, issues)
    else if (/\s/.test(scope)) issues.push(`${scopePath}: a scope cannot contain whitespace, got ${JSON.stringify(scope)}; list each scope separately`)
    else if (scopes.includes(scope)) issues.push(`${scopePath}: duplicate scope ${JSON.stringify(scope)}`)
    else scopes.push(scope)
  })
  return scopes
}

function parseHeaders (value: unknown, path: string, issues: Issues): Record<string, string> {
  if (value === undefined || value === null) return {}
  if (!isRecord(value)) { expected('a mapping of header name to value', value, path, issues); return {} }
  const entries: Array<[string, string]> = []
  const seen = new Set<string>()
  for (const [name, headerValue] of Object.entries(value)) {
    const headerPath = joinPath(path, name)
    const lower = name.toLowerCase()
    if (!headerNamePattern.test(name)) issues.push(`${headerPath}: not a valid header name`)
    else if (reservedHeaders.has(lower)) issues.push(`${headerPath}: the broker sets or removes ${name} itself; it cannot be a static header`)
    else if (seen.has(lower)) issues.push(`${headerPath}: duplicate header (names are case-insensitive)`)
    else if (typeof headerValue !== 'string') expected('a string', headerValue, headerPath, issues)
    else if (!headerValuePattern.test(headerValue)) issues.push(`${headerPath}: the value contains a line break or control character`)
    else entries.push([name, headerValue])
    seen.add(lower)
  }
  return Object.fromEntries(entries)
}
