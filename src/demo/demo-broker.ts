// The demo set-up: a local authority, a local Persontjenesten and a broker wired to them, all on loopback.

import { exportJWK, generateKeyPair } from 'jose'
import type { Logger } from 'pino'
import { startBroker, type DependencyOptions, type RunningBroker } from '../app.ts'
import type { BrokerConfig, LimitsConfig, RouteRule } from '../config/config.ts'
import { defaultKeys, defaultLimits } from '../config/defaults.ts'
import { parseClientKey } from '../keys/load-client-key.ts'
import type { TenantCredentials } from '../keys/tenant-keys.ts'
import { startFakeAuthority, type FakeAuthority, type FakeAuthorityOptions } from './fake-authority.ts'
import { startFakePersontjenesten, type FakePersontjenesten, type FakePersontjenestenOptions } from './fake-persontjenesten.ts'
import { selvbetjeningClientScope, startFakeSelvbetjening, type FakeSelvbetjening, type FakeSelvbetjeningOptions } from './fake-selvbetjening.ts'

/** The scope the demo tenants use. */
export const demoScope = 'nhn:hgd-persontjenesten-api/restricted-access'

export interface DemoOptions {
  readonly proxyPort: number
  readonly adminPort: number
  readonly logger: Logger
  readonly authority?: Omit<FakeAuthorityOptions, 'clients'>
  readonly persontjenesten?: Omit<FakePersontjenestenOptions, 'issuer' | 'jwksUri'>
  readonly selvbetjening?: Omit<FakeSelvbetjeningOptions, 'authority'>
  /** Key expiry settings (keys:); default warnDays 30, expiryCheckHours 12. */
  readonly keys?: Partial<BrokerConfig['keys']>
  readonly broker?: DependencyOptions
  /** An outbound proxy for every call the broker makes (egress.proxy). */
  readonly egressProxy?: string
  /** Callers (caller authentication); none by default: loopback only. */
  readonly callers?: BrokerConfig['callers']
  readonly limits?: Partial<LimitsConfig>
  readonly allowedOrigins?: readonly string[]
  readonly auditFile?: string
  /** API-wide allowlist of the demo API. */
  readonly apiAllow?: readonly RouteRule[]
  /** Where the demo API points; default the local Persontjenesten (tests point it at servers of their own). */
  readonly apiUrl?: string
  /** Upstream timeout of the demo API; default 10 s. */
  readonly apiTimeoutMs?: number
  /** Scopes the demo API requests; default the restricted-access scope. */
  readonly scopes?: readonly string[]
}

/** Everything the demo started. */
export interface DemoEnvironment {
  readonly authority: FakeAuthority
  readonly persontjenesten: FakePersontjenesten
  readonly selvbetjening: FakeSelvbetjening
  readonly broker: RunningBroker
  readonly config: BrokerConfig
  readonly close: () => Promise<void>
}

/**
 * Starts the demo: tenant `granfjelldal` (single-tenant client naming child unit 999977776) and tenant
 * `fjordvik` (a multi-tenant supplier client acting for 999977774:999977775), both with API `persontjenesten`.
 */
export async function startDemo (options: DemoOptions): Promise<DemoEnvironment> {
  const authority = await startFakeAuthority({ ...options.authority })
  const persontjenesten = await startFakePersontjenesten({ ...options.persontjenesten, issuer: authority.issuer, jwksUri: authority.jwksUri })
  const selvbetjening = await startFakeSelvbetjening({ ...options.selvbetjening, authority })
  const closeFakes = async (): Promise<void> => { await Promise.all([authority.close(), persontjenesten.close(), selvbetjening.close()]) }
  try {
    const scopes = options.scopes ?? [demoScope]
    const granfjelldal = await createDemoClient(authority, 'demo-granfjelldal-epj', {
      scopes: [demoScope, 'nhn:hgd-persontjenesten-api/full-access', selvbetjeningClientScope], organization: '999977774', clientName: 'GRANFJELLDAL KOMMUNE - EPJ'
    })
    const supplier = await createDemoClient(authority, 'demo-epj-supplier', {
      scopes: [demoScope, selvbetjeningClientScope], multiTenant: true, organization: '999977773', clientName: 'EPJ LEVERANDØR AS - multi-tenant'
    })
    const config: BrokerConfig = {
      source: '(built-in demo)',
      helseid: { environment: 'custom', issuer: authority.issuer, selvbetjeningUrl: selvbetjening.origin, timeoutMs: 5000 },
      listen: { proxy: { host: '127.0.0.1', port: options.proxyPort }, admin: { host: '127.0.0.1', port: options.adminPort }, hostnames: [] },
      ...(options.callers === undefined ? {} : { callers: options.callers }),
      limits: { ...defaultLimits, ...options.limits },
      browser: { allowedOrigins: options.allowedOrigins ?? [] },
      audit: options.auditFile === undefined ? {} : { file: options.auditFile },
      egress: options.egressProxy === undefined ? {} : { proxy: options.egressProxy },
      apis: {
        persontjenesten: {
          name: 'persontjenesten',
          url: options.apiUrl ?? persontjenesten.origin,
          scopes,
          headers: { 'api-version': '3' },
          timeoutMs: options.apiTimeoutMs ?? 10_000,
          connectTimeoutMs: 2000,
          allow: options.apiAllow ?? []
        }
      },
      tenants: {
        granfjelldal: { name: 'granfjelldal', clientFile: granfjelldal.key.file, organization: { child: '999977776' }, apis: ['persontjenesten'] },
        fjordvik: { name: 'fjordvik', clientFile: supplier.key.file, organization: { parent: '999977774', child: '999977775' }, apis: ['persontjenesten'] }
      },
      keys: { ...defaultKeys, ...options.keys },
      logging: { level: options.logger.level as BrokerConfig['logging']['level'] }
    }
    const credentials = new Map<string, TenantCredentials>([
      ['granfjelldal', { tenant: 'granfjelldal', clientId: granfjelldal.clientId, key: granfjelldal.key }],
      ['fjordvik', { tenant: 'fjordvik', clientId: supplier.clientId, key: supplier.key }]
    ])
    const broker = await startBroker(config, credentials, options.logger, { ...options.broker })
    let closing: Promise<void> | undefined
    return {
      authority,
      persontjenesten,
      selvbetjening,
      broker,
      config,
      close: async () => {
        closing ??= broker.close().then(closeFakes)
        await closing
      }
    }
  } catch (error) {
    await closeFakes()
    throw error
  }
}

async function createDemoClient (
  authority: FakeAuthority,
  clientId: string,
  registration: { scopes: readonly string[], organization: string, clientName: string, multiTenant?: boolean }
): Promise<{ clientId: string, key: TenantCredentials['key'] }> {
  // Shaped like a Selvbetjening download, so the demo goes through the same parser as real files.
  const { privateKey } = await generateKeyPair('PS256', { modulusLength: 2048, extractable: true })
  const privateJwk = await exportJWK(privateKey)
  const download = { clientId, authority: authority.issuer, clientName: registration.clientName, privateJwk: JSON.stringify(privateJwk) }
  const key = await parseClientKey(download, `(demo: ${clientId}, in memory)`)
  authority.registerClient({ clientId, publicJwks: [key.publicJwk], ...registration })
  return { clientId, key }
}
