// What every command that talks to HelseID does first: load the config, its key files and caller secrets, and build the services from them.

import { createDependencies, type BrokerDependencies, type DependencyOptions } from '../app.ts'
import type { BrokerConfig } from '../config/config.ts'
import { loadConfig } from '../config/load-config.ts'
import { loadTenantCredentials } from '../keys/tenant-keys.ts'
import { createLogger } from '../logging.ts'
import type { LoadedConfig } from '../reload.ts'
import { loadCallerSecrets } from '../security/caller-secrets.ts'

/**
 * Loads and checks the config file, every tenant's key file and every caller's secret
 * (createDependencies needs them all when callers are configured).
 * `config` is the config file's path, or the config a command has already loaded to look at before any key file is read.
 * @throws ConfigError listing the problems
 */
export async function loadConfigFiles (config: string | BrokerConfig, options: { readonly allowInsecurePermissions: boolean }): Promise<LoadedConfig> {
  const loaded = typeof config === 'string' ? await loadConfig(config) : config
  const credentials = await loadTenantCredentials(loaded, options)
  const callerSecrets = await loadCallerSecrets(loaded, options)
  return { config: loaded, credentials, callerSecrets }
}

/**
 * Builds the services from loaded files with a silent logger, runs `use` with them and closes them afterwards,
 * also when `use` throws. The caller secrets come from `files`; `options` holds the command's own choices.
 */
export async function withDependencies<T> (files: LoadedConfig, options: Omit<DependencyOptions, 'callerSecrets'>, use: (deps: BrokerDependencies) => Promise<T>): Promise<T> {
  const deps = await createDependencies(files.config, files.credentials, createLogger('silent'), { ...options, callerSecrets: files.callerSecrets })
  try {
    return await use(deps)
  } finally {
    await deps.close()
  }
}
