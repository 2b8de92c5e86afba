// Parses allowlist rules (`GET /api/v3/restricted-access/person/*`) for apis.<name>.allow and callers.<name>.allow.

import type { RouteRule } from './config.ts'
import { describe, expected, joinPath, type Issues } from './parse-helpers.ts'

/** Methods a rule may name; `*` stands for any of them. */
export const ruleMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

// RFC 3986 pchar without '%' (rules match the path as sent, so escapes would be ambiguous) and without '*' (the wildcard).
const literalSegment = /^[A-Za-z0-9\-._~!$&'()+,;=:@]+$/
const example = '"GET /api/v3/restricted-access/person/*"'

/**
 * Parses one `METHOD /path` rule: METHOD is upper case (or `*`), separated from the path by spaces;
 * path segments are literal text, `*` (exactly one segment) or a final `**` (the rest, also nothing).
 * Returns the reason when the rule is not valid.
 */
export function parseRouteRule (text: string): RouteRule | string {
  const match = /^(\S+) +(\S+)$/.exec(text)
  const method = match?.[1]
  const pattern = match?.[2]
  if (method === undefined || pattern === undefined) return `expected "METHOD /path" such as ${example}, got ${describe(text)}`
  const methodProblem = checkMethod(method)
  if (methodProblem !== undefined) return methodProblem
  const pathProblem = checkPattern(pattern)
  if (pathProblem !== undefined) return pathProblem
  return { method, pattern, text }
}

/** Parses an optional list of rules at `path`; absent is an empty list, an empty list is an issue (it would read as "allow nothing"). */
export function parseRouteRules (value: unknown, path: string, issues: Issues): RouteRule[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) { expected(`a list of rules such as [${example}]`, value, path, issues); return [] }
  if (value.length === 0) issues.push(`${path}: at least one rule is required; leave allow out to apply no rules here`)
  const rules: RouteRule[] = []
  value.forEach((item: unknown, index) => {
    const itemPath = joinPath(path, index)
    if (typeof item !== 'string') { expected(`a "METHOD /path" string such as ${example}`, item, itemPath, issues); return }
    const rule = parseRouteRule(item)
    if (typeof rule === 'string') issues.push(`${itemPath}: ${rule}`)
    else if (rules.some(other => other.method === rule.method && other.pattern === rule.pattern)) issues.push(`${itemPath}: ${JSON.stringify(item)} is listed twice`)
    else rules.push(rule)
  })
  return rules
}

function checkMethod (method: string): string | undefined {
  if (method === '*' || ruleMethods.some(known => known === method)) return undefined
  const upper = method.toUpperCase()
  if (ruleMethods.some(known => known === upper)) return `write the method in upper case: ${upper}`
  return `unknown method ${JSON.stringify(method)}; expected one of ${ruleMethods.join(', ')} or * for any`
}

function checkPattern (pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return `the path must start with "/", got ${describe(pattern)}`
  if (pattern.includes('?')) return 'a query is not allowed; rules match the path only'
  if (pattern.includes('#')) return 'a fragment is not allowed'
  if (pattern === '/') return undefined
  const segments = pattern.slice(1).split('/')
  for (const [index, segment] of segments.entries()) {
    const isLast = index === segments.length - 1
    if (segment === '') return 'the path has an empty segment ("//" or a trailing "/")'
    if (segment === '.' || segment === '..') return 'dot segments ("." and "..") are not allowed'
    if (segment === '*') continue
    if (segment === '**') {
      if (isLast) continue
      return '"**" is only allowed as the last segment'
    }
    if (segment.includes('*')) return `"*" must be a whole segment, got ${JSON.stringify(segment)}`
    if (segment.includes('%')) return `percent-escapes are not supported, got ${JSON.stringify(segment)}; use * for a segment that needs them`
    if (!literalSegment.test(segment)) return `the segment ${JSON.stringify(segment)} holds characters that cannot appear in a URL path`
  }
  return undefined
}
