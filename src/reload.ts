// Reloading config, keys and caller secrets in a running broker: a bad or restart-only change is
// refused as a whole and the running config keeps serving.

import type { BrokerDependencies } from './app.ts'
import type { BrokerConfig } from './config/config.ts'
import { ConfigError } from './errors.ts'
import type { TenantCredentials } from './keys/tenant-keys.ts'
import type { CallerSecret } from './security/caller-secrets.ts'
import { createTenantRuntimes } from './tenants.ts'

/** A config with its key material, loaded and checked. */
export interface LoadedConfig {
  readonly config: BrokerConfig
  readonly credentials: ReadonlyMap<string, TenantCredentials>
  readonly callerSecrets: ReadonlyMap<string, CallerSecret>
}

// Bound at start-up (sockets, connection pools, timers): a change needs a restart.
const restartOnly: ReadonlyArray<readonly [string, (config: BrokerConfig) => unknown]> = [
  ['listen.proxy', config => config.listen.proxy],
  ['listen.admin', config => config.listen.admin],
  ['helseid', config => config.helseid],
  ['egress', config => config.egress],
  ['audit', config => config.audit],
  ['keys', config => config.keys],
  ['limits.maxHeaderBytes', config => config.limits.maxHeaderBytes],
  ['limits.requestTimeoutMs', config => config.limits.requestTimeoutMs],
  ['limits.idleTimeoutMs', config => config.limits.idleTimeoutMs],
  ['limits.maxConcurrentUpstream', config => config.limits.maxConcurrentUpstream]
]

/** The paths whose change a reload cannot apply. */
export function restartOnlyChanges (running: BrokerConfig, next: BrokerConfig): readonly string[] {
  return restartOnly.filter(([, pick]) => JSON.stringify(pick(running)) !== JSON.stringify(pick(next))).map(([path]) => path)
}

/**
 * Applies a newly loaded config: tenants, APIs, callers, allowlists, browser origins, host names,
 * rate and body limits and the log level. Tenants keep their DPoP keys, so cached tokens stay valid.
 * @throws ConfigError when a restart-only setting changed
 */
export async function reloadBroker (deps: BrokerDependencies, loaded: LoadedConfig): Promise<void> {
  const changes = restartOnlyChanges(deps.config, loaded.config)
  if (changes.length > 0) {
    throw new ConfigError(changes.map(path => `${path}: changed; restart the broker to apply it (the running config keeps serving)`))
  }
  const tenants = await createTenantRuntimes(loaded.config, loaded.credentials, deps.tenants)
  deps.applyReload(loaded.config, tenants, loaded.callerSecrets)
}
