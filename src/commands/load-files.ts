// What every command that talks to HelseID loads first: the config, its key files and caller secrets.

import { loadConfig } from '../config/load-config.ts'
import { loadTenantCredentials } from '../keys/tenant-keys.ts'
import type { LoadedConfig } from '../reload.ts'
import { loadCallerSecrets } from '../security/caller-secrets.ts'

/**
 * Loads and checks the config file, every tenant's key file and every caller's secret
 * (createDependencies needs them all when callers are configured).
 * @throws ConfigError listing the problems
 */
export async function loadConfigFiles (configPath: string, options: { readonly allowInsecurePermissions: boolean }): Promise<LoadedConfig> {
  const config = await loadConfig(configPath)
  const credentials = await loadTenantCredentials(config, options)
  const callerSecrets = await loadCallerSecrets(config, options)
  return { config, credentials, callerSecrets }
}
