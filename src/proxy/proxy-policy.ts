// What the proxy enforces, built from one config: tenants, callers, allowlists, guards and limits.
// A reload builds a new policy and swaps it in whole; each request keeps the policy it started with.

import type { BrokerConfig, LimitsConfig } from '../config/config.ts'
import { createCallerAuthenticator, type CallerAuthenticator } from '../security/caller-auth.ts'
import type { CallerSecret } from '../security/caller-secrets.ts'
import { createRequestGuard, type RequestGuard } from '../security/request-guards.ts'
import { compileRouteRules, type RouteMatcher } from '../security/route-allowlist.ts'
import type { TenantRuntime } from '../tenants.ts'

/** Everything a proxied request is checked against. */
export interface ProxyPolicy {
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  /** API-wide allowlists by API name; undefined where the API has no rules. */
  readonly apiMatchers: ReadonlyMap<string, RouteMatcher | undefined>
  readonly guard: RequestGuard
  /** Present when callers are configured. */
  readonly authenticate?: CallerAuthenticator
  readonly limits: LimitsConfig
  /** The Host and browser guard of the admin listener (same names and origins, any client address). */
  readonly adminGuard: RequestGuard
}

/** Builds the policy for the proxy listener. */
export function createProxyPolicy (config: BrokerConfig, tenants: ReadonlyMap<string, TenantRuntime>, callerSecrets: ReadonlyMap<string, CallerSecret>): ProxyPolicy {
  const apiMatchers = new Map(Object.values(config.apis).map(api => [api.name, compileRouteRules(api.allow)]))
  const guard = createRequestGuard({ hostnames: localHostnames(config), allowedOrigins: config.browser.allowedOrigins, isLoopbackOnly: config.callers === undefined })
  return {
    tenants,
    apiMatchers,
    guard,
    ...(config.callers === undefined ? {} : { authenticate: createCallerAuthenticator(config.callers, callerSecrets) }),
    limits: config.limits,
    adminGuard: createRequestGuard({ hostnames: localHostnames(config), allowedOrigins: config.browser.allowedOrigins, isLoopbackOnly: false })
  }
}

/** Host names callers may use besides the loopback names. */
export function localHostnames (config: BrokerConfig): readonly string[] {
  return [...config.listen.hostnames, config.listen.proxy.host, config.listen.admin.host]
}
