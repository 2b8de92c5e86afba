// Loads every tenant's client key once per file and checks it against the tenant's config and the broker's issuer.

import type { BrokerConfig, TenantConfig } from '../config/config.ts'
import { ConfigError } from '../errors.ts'
import type { ClientKey } from './client-key.ts'
import { KeyFileError, loadClientKey } from './load-client-key.ts'
import type { ProtectedFileOptions } from './protected-file.ts'

/** What a tenant signs its client assertions with, and as whom. */
export interface TenantCredentials {
  readonly tenant: string
  readonly clientId: string
  readonly key: ClientKey
}

/**
 * Loads the client key of every tenant; tenants naming the same file share one ClientKey.
 * On POSIX a key file that group or others may access is an issue unless `options.allowInsecurePermissions`.
 * @throws ConfigError listing every tenant whose key file is unusable or disagrees with the config
 */
export async function loadTenantCredentials (config: BrokerConfig, options: ProtectedFileOptions = {}): Promise<ReadonlyMap<string, TenantCredentials>> {
  const tenants = Object.values(config.tenants)
  const files = [...new Set(tenants.map(tenant => tenant.clientFile))]
  const loaded = new Map(await Promise.all(files.map(async file => [file, await loadOrError(file, options)] as const)))
  const issues: string[] = []
  const credentials = new Map<string, TenantCredentials>()
  for (const tenant of tenants) {
    const key = loaded.get(tenant.clientFile)
    if (key === undefined) continue
    if (key instanceof KeyFileError) { issues.push(`tenants.${tenant.name}.client: ${key.message}`); continue }
    const resolved = checkTenantKey(tenant, key, config.helseid.issuer, issues)
    if (resolved !== undefined) credentials.set(tenant.name, resolved)
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return credentials
}

async function loadOrError (file: string, options: ProtectedFileOptions): Promise<ClientKey | KeyFileError> {
  try {
    return await loadClientKey(file, options)
  } catch (error) {
    if (error instanceof KeyFileError) return error
    throw error
  }
}

function checkTenantKey (tenant: TenantConfig, key: ClientKey, issuer: string, issues: string[]): TenantCredentials | undefined {
  const before = issues.length
  const path = `tenants.${tenant.name}`
  if (key.authority !== undefined && key.authority !== issuer) {
    issues.push(`${path}.client: the file is for ${key.authority} but the broker's issuer is ${issuer}`)
  }
  if (tenant.clientId !== undefined && key.clientId !== undefined && tenant.clientId !== key.clientId) {
    issues.push(`${path}.clientId: ${tenant.clientId} differs from the client id ${key.clientId} in ${tenant.clientFile}; remove clientId or fix it`)
  }
  const clientId = tenant.clientId ?? key.clientId
  if (clientId === undefined) issues.push(`${path}.clientId: required because ${tenant.clientFile} names no client id`)
  if (issues.length !== before || clientId === undefined) return undefined
  return { tenant: tenant.name, clientId, key }
}
