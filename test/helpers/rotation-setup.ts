// Key rotation tests: the local authority, Selvbetjening and Persontjenesten in the test process, and brokers configured from files.

import type { Test } from 'tap'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { calculateJwkThumbprint, type JWK } from 'jose'
import { startBroker, type RunningBroker } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { startFakePersontjenesten, type FakePersontjenesten } from '../../src/demo/fake-persontjenesten.ts'
import { selvbetjeningClientScope, startFakeSelvbetjening, type FakeSelvbetjening } from '../../src/demo/fake-selvbetjening.ts'
import { loadClientKey } from '../../src/keys/load-client-key.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { privateJwk, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { captureLogs } from './capture-logs.ts'

export const scope = 'nhn:hgd-persontjenesten-api/restricted-access'
export const eventsPath = 'persontjenesten/api/v3/restricted-access/event/latest'

export interface Fakes {
  readonly authority: FakeAuthority
  readonly selvbetjening: FakeSelvbetjening
  readonly persontjenesten: FakePersontjenesten
}

/** Starts the three fakes, closed at the end of `t`; they outlive any child process the test runs. */
export async function startFakes (t: Test): Promise<Fakes> {
  const authority = await startFakeAuthority()
  const selvbetjening = await startFakeSelvbetjening({ authority })
  const persontjenesten = await startFakePersontjenesten({ issuer: authority.issuer, jwksUri: authority.jwksUri })
  t.teardown(async () => { await Promise.all([selvbetjening.close(), persontjenesten.close(), authority.close()]) })
  return { authority, selvbetjening, persontjenesten }
}

export interface ClientSetup {
  readonly dir: string
  readonly configPath: string
  /** keys/<file>.json, absolute. */
  readonly clientFile: string
  readonly clientId: string
  /** The kid the client file's key starts with. */
  readonly kid: string
}

export interface SetupOptions {
  readonly clientId: string
  /** 'download' (Selvbetjening JSON, default) or 'jwk' (a plain private JWK; the tenants then name the client id). */
  readonly shape?: 'download' | 'jwk'
  /** Tenants using the one client file; default granfjelldal only. */
  readonly tenants?: readonly string[]
  /** Extra YAML under `keys:`, e.g. `autoRotate: true`. */
  readonly keys?: string
  /** An existing test directory (several clients side by side); default a new t.testdir(). */
  readonly dir?: string
}

/** Registers a client with an RSA key at the authority and writes its key file and a config naming the fakes. */
export async function setUpClient (t: Test, fakes: Fakes, options: SetupOptions): Promise<ClientSetup> {
  const jwk: JWK = await privateJwk('RSA-2048')
  const publicJwk = publicOnly(jwk)
  const kid = await calculateJwkThumbprint(publicJwk)
  const tenants = options.tenants ?? ['granfjelldal']
  fakes.authority.registerClient({
    clientId: options.clientId,
    publicJwks: [{ ...publicJwk, kid }],
    scopes: [scope, selvbetjeningClientScope],
    organization: '999977774',
    ...(tenants.length > 1 ? { multiTenant: true } : {})
  })
  const dir = options.dir ?? t.testdir({})
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 })
  const name = `keys/${options.clientId}.json`
  const clientFile = options.shape === 'jwk'
    ? await writeJson(dir, name, jwk)
    : await writeJson(dir, name, selvbetjeningDownload(jwk, { authority: fakes.authority.issuer, clientId: options.clientId }))
  const clientIdLine = options.shape === 'jwk' ? `, clientId: ${options.clientId}` : ''
  const organization = (index: number): string => tenants.length > 1 ? `{ parent: "999977774", child: "99997777${5 + index}" }` : '{ child: "999977776" }'
  const yaml = `helseid: { issuer: "${fakes.authority.issuer}", selvbetjeningUrl: "${fakes.selvbetjening.origin}" }
listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }
apis:
  persontjenesten: { url: "${fakes.persontjenesten.origin}", scopes: [${scope}] }
tenants:
${tenants.map((tenant, index) => `  ${tenant}: { client: ${name}${clientIdLine}, organization: ${organization(index)}, apis: [persontjenesten] }`).join('\n')}
${options.keys === undefined ? '' : `keys: { ${options.keys} }\n`}`
  const configPath = join(dir, `${options.clientId}.yaml`)
  await writeFile(configPath, yaml)
  return { dir, configPath, clientFile, clientId: options.clientId, kid }
}

export interface ConfiguredBroker {
  readonly broker: RunningBroker
  readonly logs: ReturnType<typeof captureLogs>
  /** GET the events route through the proxy as `tenant`. */
  readonly callEvents: (tenant?: string) => Promise<Response>
}

/** What `serve` does: load the config and its key files, start the broker (pending keys are resolved in the background). */
export async function startConfiguredBroker (t: Test, configPath: string, options: { checkKeyExpiry?: boolean } = {}): Promise<ConfiguredBroker> {
  const config = await loadConfig(configPath)
  const credentials = await loadTenantCredentials(config)
  const logs = captureLogs()
  const broker = await startBroker(config, credentials, logs.logger, {
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    checkKeyExpiry: options.checkKeyExpiry ?? false,
    drainTimeoutMs: 1000
  })
  t.teardown(async () => { await broker.close() })
  return {
    broker,
    logs,
    callEvents: async (tenant = 'granfjelldal') => await fetch(`${broker.proxyUrl}/${tenant}/${eventsPath}`)
  }
}

/** The kid of the key a client file holds now (loading it checks that it is usable). */
export async function kidInFile (file: string): Promise<string> {
  return (await loadClientKey(file)).kid
}

/** Names in the key directory, sorted. */
export async function keyDirectory (setup: ClientSetup): Promise<string[]> {
  return (await readdir(join(setup.dir, 'keys'))).sort()
}

/** The pending file's JSON, or undefined. */
export async function readPending (setup: ClientSetup): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(`${setup.clientFile}.pending.json`, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** The kids of the client assertions the authority issued tokens for, for one client. */
export function issuedKids (fakes: Fakes, clientId: string): string[] {
  return fakes.authority.tokenRequests.filter(request => request.clientId === clientId && request.outcome === 'issued').map(request => request.assertionKid ?? '')
}
