// Per-tenant runtime: the client key, the DPoP key and, per API, the token request that decides reuse.

import type { ApiConfig, BrokerConfig } from './config/config.ts'
import { createDpopKey, type DpopKey } from './helseid/dpop-key.ts'
import type { TokenRequest } from './helseid/token-client.ts'
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

/** Builds the runtime of every tenant; each tenant gets a DPoP key of its own. */
export async function createTenantRuntimes (config: BrokerConfig, credentials: ReadonlyMap<string, TenantCredentials>): Promise<ReadonlyMap<string, TenantRuntime>> {
  const runtimes = new Map<string, TenantRuntime>()
  for (const tenant of Object.values(config.tenants)) {
    const tenantCredentials = credentials.get(tenant.name)
    if (tenantCredentials === undefined) throw new TypeError(`no credentials loaded for tenant ${tenant.name}`)
    const dpopKey = await createDpopKey()
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
    runtimes.set(tenant.name, { name: tenant.name, credentials: tenantCredentials, dpopKey, apis })
  }
  return runtimes
}
