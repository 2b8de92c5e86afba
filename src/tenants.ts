// Per-tenant runtime: the client key (replaced in place by a key rotation), the DPoP key and, per API, the token request that decides reuse.

import type { ApiConfig, BrokerConfig } from './config/config.ts'
import { createDpopKey, type DpopKey } from './helseid/dpop-key.ts'
import type { TokenRequest } from './helseid/token-client.ts'
import type { ClientKey } from './keys/client-key.ts'
import type { TenantCredentials } from './keys/tenant-keys.ts'

/** One API as one tenant uses it. */
export interface TenantApi {
  readonly config: ApiConfig
  readonly tokenRequest: TokenRequest
}

/** Everything the proxy needs to act for one tenant. */
export interface TenantRuntime {
  readonly name: string
  readonly credentials: TenantCredentials
  readonly dpopKey: DpopKey
  readonly apis: ReadonlyMap<string, TenantApi>
}

/**
 * Builds the runtime of every tenant; each tenant gets a DPoP key of its own. On a reload, `previous`
 * hands each tenant its DPoP key back, so that tokens cached for unchanged tenants stay usable.
 */
export async function createTenantRuntimes (config: BrokerConfig, credentials: ReadonlyMap<string, TenantCredentials>, previous?: ReadonlyMap<string, TenantRuntime>): Promise<ReadonlyMap<string, TenantRuntime>> {
  const runtimes = new Map<string, TenantRuntime>()
  for (const tenant of Object.values(config.tenants)) {
    const tenantCredentials = credentials.get(tenant.name)
    if (tenantCredentials === undefined) throw new TypeError(`no credentials loaded for tenant ${tenant.name}`)
    const dpopKey = previous?.get(tenant.name)?.dpopKey ?? await createDpopKey()
    const apis = new Map<string, TenantApi>()
    for (const apiName of tenant.apis) {
      const api = config.apis[apiName]
      if (api === undefined) throw new TypeError(`tenant ${tenant.name} names unknown API ${apiName}`)
      apis.set(apiName, {
        config: api,
        tokenRequest: {
          clientId: tenantCredentials.clientId,
          key: tenantCredentials.key,
          organization: tenant.organization,
          scopes: api.scopes,
          dpopKey
        }
      })
    }
    const runtime = { name: tenant.name, credentials: tenantCredentials, dpopKey, apis }
    keySwitches.set(runtime, key => {
      // The runtime and its API entries were made here, mutable; readers see the new key on their next request.
      (runtime as { credentials: TenantCredentials }).credentials = { ...runtime.credentials, key }
      for (const entry of apis.values()) (entry as { tokenRequest: TokenRequest }).tokenRequest = { ...entry.tokenRequest, key }
    })
    runtimes.set(tenant.name, runtime)
  }
  return runtimes
}

const keySwitches = new WeakMap<TenantRuntime, (key: ClientKey) => void>()

/**
 * Switches every tenant whose client file is `key.file` to `key` in place (after a key rotation), so the proxy, /status and
 * the Selvbetjening calls use it from their next request on; tokens of the old key are no longer asked for and age out.
 * @returns the names of the tenants switched (none already using the key)
 */
export function replaceClientKey (tenants: ReadonlyMap<string, TenantRuntime>, key: ClientKey): readonly string[] {
  const switched: string[] = []
  for (const tenant of tenants.values()) {
    if (tenant.credentials.key.file !== key.file || tenant.credentials.key.thumbprint === key.thumbprint) continue
    const switchKey = keySwitches.get(tenant)
    if (switchKey === undefined) throw new TypeError(`tenant ${tenant.name} was not made by createTenantRuntimes; its key cannot be replaced`)
    switchKey(key)
    switched.push(tenant.name)
  }
  return switched
}
