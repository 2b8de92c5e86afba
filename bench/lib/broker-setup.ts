// The broker's surroundings for the benchmark: the local authority, one multi-tenant client key shared by every
// tenant (generated once), and the config a broker with N tenants would be given.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { parseClientKey } from '../../src/keys/load-client-key.ts'
import { onCleanup } from './children.ts'
import { apiName, benchScope, personPath } from './fixtures.ts'

export interface BenchAuthority {
  readonly authority: FakeAuthority
  /** Absolute path of the Selvbetjening-shaped key file (RSA-2048) every tenant names. */
  readonly keyFile: string
  readonly clientId: string
  /** Scratch directory (key file, config source, nginx prefix); removed by close(). */
  readonly dir: string
  readonly close: () => Promise<void>
}

/**
 * Starts the local authority (DPoP nonce required, as HelseID) and registers one multi-tenant supplier
 * client with a freshly generated RSA-2048 key, written once to a key file that all tenants share.
 */
export async function startBenchAuthority (): Promise<BenchAuthority> {
  const dir = mkdtempSync(join(tmpdir(), 'helseid-broker-bench-'))
  let authority: FakeAuthority | undefined
  try {
    authority = await startFakeAuthority({})
    const clientId = 'bench-epj-supplier'
    const { privateKey } = await generateKeyPair('PS256', { modulusLength: 2048, extractable: true })
    const download = { clientId, authority: authority.issuer, clientName: 'BENCH EPJ LEVERANDØR AS - multi-tenant', privateJwk: JSON.stringify(await exportJWK(privateKey)) }
    const keyFile = join(dir, 'bench-supplier.json')
    writeFileSync(keyFile, JSON.stringify(download), { mode: 0o600 })
    const key = await parseClientKey(download, keyFile)
    authority.registerClient({ clientId, publicJwks: [key.publicJwk], scopes: [benchScope], multiTenant: true, organization: '999977773', clientName: download.clientName })
    const started = authority
    let closing: Promise<void> | undefined
    const close = async (): Promise<void> => {
      closing ??= (async () => {
        removeCleanup()
        await started.close()
        rmSync(dir, { recursive: true, force: true })
      })()
      await closing
    }
    // Also on SIGINT/SIGTERM (stopEverything): the scratch directory holds a private key.
    const removeCleanup = onCleanup(close)
    return { authority: started, keyFile, clientId, dir, close }
  } catch (error) {
    await authority?.close()
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

/** Node options for the broker child, from BENCH_BROKER_EXEC_ARGV (space-separated, e.g. "--max-semi-space-size=2"). */
export function brokerExecArgv (): string[] {
  return (process.env.BENCH_BROKER_EXEC_ARGV ?? '').split(' ').filter(arg => arg !== '')
}

/** t001, t002, … */
export function tenantNames (count: number): string[] {
  return Array.from({ length: count }, (_unused, index) => `t${String(index + 1).padStart(3, '0')}`)
}

/** The person path through the broker for each tenant. */
export function brokerPaths (tenants: readonly string[], path = personPath): string[] {
  return tenants.map(tenant => `/${tenant}/${apiName}${path}`)
}

/** What a config file for a broker with these tenants would hold (each tenant its own organisation parent number). */
export function brokerConfig (options: {
  readonly issuer: string
  readonly upstream: string
  readonly keyFile: string
  readonly tenants: readonly string[]
  readonly logLevel?: string
  readonly maxConcurrentUpstream?: number
}): unknown {
  return {
    helseid: { issuer: options.issuer, timeoutMs: 10_000 },
    listen: { proxy: '127.0.0.1:0', admin: '127.0.0.1:0' },
    // The default rate limit (100/s per client address, burst 200) and upstream concurrency (256) would refuse
    // benchmark load with 429/503; raised here, their per-request checks still run.
    limits: { rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 }, maxConcurrentUpstream: options.maxConcurrentUpstream ?? 2048 },
    apis: {
      [apiName]: { url: options.upstream, scopes: [benchScope], headers: { 'Api-Version': '3' }, timeoutMs: 30_000 }
    },
    tenants: Object.fromEntries(options.tenants.map((tenant, index) => [tenant, {
      client: options.keyFile,
      organization: { parent: String(910_000_001 + index) },
      apis: [apiName]
    }])),
    logging: { level: options.logLevel ?? 'info' }
  }
}
