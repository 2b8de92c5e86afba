// Allowlists of method + path pattern, per API and per caller: where rules exist, nothing else passes.

import type { RouteRule } from '../config/config.ts'

/** Decides whether a method and API-relative path pass a set of rules. */
export type RouteMatcher = (method: string, path: string) => boolean

/** Compiles rules into a matcher; an empty rule list lets everything through. */
export function compileRouteRules (rules: readonly RouteRule[]): RouteMatcher | undefined {
  if (rules.length === 0) return undefined
  const compiled = rules.map(rule => ({ method: rule.method, segments: rule.pattern.split('/').slice(1) }))
  return (method, path) => {
    const segments = path.split('/').slice(1)
    return compiled.some(rule => (rule.method === '*' || rule.method === method) && matchSegments(rule.segments, segments))
  }
}

function matchSegments (pattern: readonly string[], path: readonly string[]): boolean {
  for (let index = 0; index < pattern.length; index++) {
    const part = pattern[index]
    // A final `**` takes the rest of the path, also nothing.
    if (part === '**' && index === pattern.length - 1) return true
    const segment = path[index]
    if (segment === undefined) return false
    if (part === '*' ? segment === '' : part !== segment) return false
  }
  return pattern.length === path.length
}
