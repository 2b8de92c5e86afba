// GET /status: what a sysadmin wants to see per tenant; built only from non-secret fields.

import type { Clock } from '../clock.ts'
import type { KeyExpiry } from '../selvbetjening/key-expiry.ts'
import type { TenantRuntime } from '../tenants.ts'
import type { CachedTokenInfo } from '../tokens/token-service.ts'

/** A cached token as shown: lifetimes and scopes only. */
export interface TokenStatus {
  readonly scopes: readonly string[]
  readonly issuedAt: string
  readonly expiresAt: string
  readonly expiresInSeconds: number
  readonly refreshAt: string
}

/** The tenant's client key: public facts and its expiry as the Selvbetjening API last told it. */
export interface KeyStatus {
  readonly kid: string
  readonly alg: string
  readonly kty: string
  readonly sizeBits: number
  readonly file: string
  readonly expiresAt: string | null
  readonly daysLeft: number | null
  readonly expiryCheckedAt: string | null
  readonly expiryError: string | null
}

export interface TenantStatus {
  readonly name: string
  readonly clientId: string
  readonly organization: { readonly parent?: string, readonly child?: string }
  readonly key: KeyStatus
  readonly dpopKeyThumbprint: string
  readonly apis: ReadonlyArray<{ readonly name: string, readonly url: string, readonly scopes: readonly string[], readonly token: TokenStatus | null }>
}

export interface StatusReport {
  readonly issuer: string
  readonly discoveryFetched: boolean
  readonly startedAt: string
  readonly tenants: readonly TenantStatus[]
}

const stringArray = { type: 'array', items: { type: 'string' } } as const

/** JSON schema of the report (also the OpenAPI component `StatusReport`). */
export const statusReportSchema = {
  $id: 'StatusReport',
  type: 'object',
  required: ['issuer', 'discoveryFetched', 'startedAt', 'tenants'],
  properties: {
    issuer: { type: 'string' },
    discoveryFetched: { type: 'boolean' },
    startedAt: { type: 'string', format: 'date-time' },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'clientId', 'organization', 'key', 'dpopKeyThumbprint', 'apis'],
        properties: {
          name: { type: 'string' },
          clientId: { type: 'string' },
          organization: { type: 'object', properties: { parent: { type: 'string' }, child: { type: 'string' } } },
          key: {
            type: 'object',
            required: ['kid', 'alg', 'kty', 'sizeBits', 'file', 'expiresAt', 'daysLeft', 'expiryCheckedAt', 'expiryError'],
            properties: {
              kid: { type: 'string' },
              alg: { type: 'string' },
              kty: { type: 'string' },
              sizeBits: { type: 'integer' },
              file: { type: 'string' },
              expiresAt: { type: ['string', 'null'], format: 'date-time', description: 'Key expiry from the Selvbetjening API; null until it has been read.' },
              daysLeft: { type: ['integer', 'null'], description: 'Whole days until the key expires (negative once expired); null while unknown.' },
              expiryCheckedAt: { type: ['string', 'null'], format: 'date-time', description: 'When the expiry was last read from the Selvbetjening API.' },
              expiryError: { type: ['string', 'null'], description: 'Why the last expiry check failed; null when it succeeded or has not run.' }
            }
          },
          dpopKeyThumbprint: { type: 'string', description: 'RFC 7638 thumbprint of the broker-held DPoP key (cnf.jkt of the tokens).' },
          apis: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'url', 'scopes', 'token'],
              properties: {
                name: { type: 'string' },
                url: { type: 'string' },
                scopes: stringArray,
                token: {
                  type: ['object', 'null'],
                  properties: {
                    scopes: stringArray,
                    issuedAt: { type: 'string', format: 'date-time' },
                    expiresAt: { type: 'string', format: 'date-time' },
                    expiresInSeconds: { type: 'integer' },
                    refreshAt: { type: 'string', format: 'date-time' }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
} as const

export interface StatusSources {
  readonly issuer: string
  readonly startedAtMs: number
  readonly clock: Clock
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  readonly isDiscoveryFetched: () => boolean
  readonly tokens: () => readonly CachedTokenInfo[]
  /** The expiry of the key a tenant uses, when expiry is monitored. */
  readonly keyExpiry?: (tenant: string) => KeyExpiry | undefined
}

/** Builds the status report from runtime state. */
export function buildStatusReport (sources: StatusSources): StatusReport {
  const nowMs = sources.clock.nowMs()
  const tokens = sources.tokens().filter(token => token.expiresAtMs > nowMs)
  return {
    issuer: sources.issuer,
    discoveryFetched: sources.isDiscoveryFetched(),
    startedAt: new Date(sources.startedAtMs).toISOString(),
    tenants: [...sources.tenants.values()].map(tenant => {
      const { key, clientId } = tenant.credentials
      const first = tenant.apis.values().next().value
      return {
        name: tenant.name,
        clientId,
        organization: first?.tokenRequest.organization ?? {},
        key: keyStatus(key, sources.keyExpiry?.(tenant.name)),
        dpopKeyThumbprint: tenant.dpopKey.jkt,
        apis: [...tenant.apis.entries()].map(([name, api]) => {
          const token = tokens.find(t => t.tenant === tenant.name && t.api === name)
          return {
            name,
            url: api.config.url,
            scopes: api.config.scopes,
            token: token === undefined
              ? null
              : {
                  scopes: token.scopes,
                  issuedAt: new Date(token.issuedAtMs).toISOString(),
                  expiresAt: new Date(token.expiresAtMs).toISOString(),
                  expiresInSeconds: Math.floor((token.expiresAtMs - nowMs) / 1000),
                  refreshAt: new Date(token.refreshAtMs).toISOString()
                }
          }
        })
      }
    })
  }
}

function keyStatus (key: TenantRuntime['credentials']['key'], expiry: KeyExpiry | undefined): KeyStatus {
  return {
    kid: key.kid,
    alg: key.alg,
    kty: key.kty,
    sizeBits: key.sizeBits,
    file: key.file,
    expiresAt: toIso(expiry?.expiresAtMs ?? null),
    daysLeft: expiry?.daysLeft ?? null,
    expiryCheckedAt: toIso(expiry?.checkedAtMs ?? null),
    expiryError: expiry?.lastError ?? null
  }
}

function toIso (ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}
