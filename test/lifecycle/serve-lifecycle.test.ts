import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { startFakePersontjenesten, type FakePersontjenesten } from '../../src/demo/fake-persontjenesten.ts'
import { privateJwk, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { startBroker } from '../../src/app.ts'
import { createManualClock } from '../../src/clock.ts'
import { loadConfigFiles } from '../../src/commands/load-files.ts'
import { captureLogs } from '../helpers/capture-logs.ts'

const bin = new URL('../../src/bin.js', import.meta.url).pathname
const scope = 'nhn:hgd-persontjenesten-api/restricted-access'
const events = 'persontjenesten/api/v3/restricted-access/event/latest'

interface Environment {
  readonly authority: FakeAuthority
  readonly persontjenesten: FakePersontjenesten
  readonly configPath: string
  /** Writes the config with these tenant lines; `settings` replaces the listen line (add other top-level keys after it). */
  readonly writeConfig: (tenants: string, settings?: string) => Promise<void>
}

async function environment (t: Test): Promise<Environment> {
  const authority = await startFakeAuthority()
  const persontjenesten = await startFakePersontjenesten({ issuer: authority.issuer, jwksUri: authority.jwksUri })
  t.teardown(async () => { await Promise.all([authority.close(), persontjenesten.close()]) })
  const jwk = await privateJwk('RSA-2048')
  const publicJwk = publicOnly(jwk)
  authority.registerClient({ clientId: 'gf-client', publicJwks: [{ ...publicJwk, kid: await calculateJwkThumbprint(publicJwk) }], scopes: [scope], organization: '999977774' })
  const dir = t.testdir({ keys: {} })
  await writeJson(dir, 'keys/granfjelldal.json', selvbetjeningDownload(jwk, { authority: authority.issuer, clientId: 'gf-client' }))
  const configPath = join(dir, 'broker.yaml')
  const writeConfig = async (tenants: string, settings = 'listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }'): Promise<void> => {
    await writeFile(configPath, `helseid: { issuer: "${authority.issuer}" }
${settings}
apis:
  persontjenesten: { url: "${persontjenesten.origin}", scopes: [${scope}] }
tenants:
${tenants}`)
  }
  await writeConfig('  granfjelldal: { client: keys/granfjelldal.json, organization: { child: "999977776" }, apis: [persontjenesten] }\n')
  return { authority, persontjenesten, configPath, writeConfig }
}

async function serve (t: Test, configPath: string): Promise<{ child: ChildProcess, proxyUrl: string, adminUrl: string, output: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  // Waits for the line itself (a cold start on a loaded machine can take seconds), and fails at once if the broker exits.
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`serve did not log "broker listening" within 30 s:\n${output}`)) }, 30_000)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const found = output.split('\n').find(entry => entry.includes('"msg":"broker listening"'))
      if (found !== undefined) { clearTimeout(timer); resolve(found) }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`serve exited (${String(code)}) before listening:\n${output}`)) })
  })
  const { proxy, admin } = JSON.parse(line) as { proxy: string, admin: string }
  return { child, proxyUrl: proxy, adminUrl: admin, output: () => output }
}

/** Keeps `workers` requests in flight until stopped; every status is recorded. */
function load (url: string, workers: number): { stop: () => Promise<number[]> } {
  const statuses: number[] = []
  let isRunning = true
  const loops = Array.from({ length: workers }, async () => {
    while (isRunning) {
      try {
        statuses.push((await fetch(url)).status)
      } catch {
        statuses.push(0)
      }
    }
  })
  return { stop: async () => { isRunning = false; await Promise.all(loops); return statuses } }
}

async function until (condition: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await condition()) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

t.test('SIGHUP under load: a good config is applied, a bad one refused, and no request fails', async t => {
  const env = await environment(t)
  const broker = await serve(t, env.configPath)
  const traffic = load(`${broker.proxyUrl}/granfjelldal/${events}`, 4)
  await new Promise(resolve => setTimeout(resolve, 300))

  await env.writeConfig(`  granfjelldal: { client: keys/granfjelldal.json, organization: { child: "999977776" }, apis: [persontjenesten] }
  fjordvik: { client: keys/granfjelldal.json, organization: { child: "999977775" }, apis: [persontjenesten] }
`)
  broker.child.kill('SIGHUP')
  const isApplied = await until(async () => (await fetch(`${broker.proxyUrl}/fjordvik/${events}`)).status === 200)
  await env.writeConfig('  granfjelldal: { client: keys/granfjelldal.json, apis: [no-such-api] }\n')
  broker.child.kill('SIGHUP')
  const isRefusalLogged = await until(async () => broker.output().includes('reload refused'))
  const viaAdmin = await fetch(`${broker.adminUrl}/reload`, { method: 'POST' })
  const stillServing = await fetch(`${broker.proxyUrl}/fjordvik/${events}`)
  const statuses = await traffic.stop()

  t.ok(isApplied, 'the new tenant serves after SIGHUP')
  t.ok(isRefusalLogged, 'the bad config is refused')
  t.equal(viaAdmin.status, 422)
  t.match(await viaAdmin.json(), { code: 'BROKER_RELOAD_REFUSED', detail: /tenants\.granfjelldal\.apis/ })
  t.equal(stillServing.status, 200, 'the running config keeps serving')
  t.ok(statuses.length > 20, `load was running (${statuses.length} requests)`)
  t.same([...new Set(statuses)], [200], 'no request failed during the reloads')
  t.equal(env.authority.issuedTokens.length, 2, 'granfjelldal kept its cached token across the reload; fjordvik got one')
})

t.test('SIGTERM under load: every accepted request completes, then the broker exits 0', async t => {
  const env = await environment(t)
  const broker = await serve(t, env.configPath)
  await fetch(`${broker.proxyUrl}/granfjelldal/${events}`)
  env.persontjenesten.setResponseDelayMs(2000)

  const inFlight = Array.from({ length: 20 }, async () => (await fetch(`${broker.proxyUrl}/granfjelldal/${events}`)).status)
  // The upstream records a call before it holds the answer back: once all 20 are there, all 20 are in flight.
  const isAllInFlight = await until(async () => env.persontjenesten.received.length >= 21)
  const closed = once(broker.child, 'close')
  broker.child.kill('SIGTERM')
  let readiness: unknown
  const isDraining = await until(async () => {
    const response = await fetch(`${broker.adminUrl}/readyz`)
    readiness = await response.json()
    return response.status === 503
  })
  const statuses = await Promise.all(inFlight)
  const [code] = await closed as [number | null]

  t.ok(isAllInFlight, 'all 20 requests reached the upstream before SIGTERM')
  t.same(statuses, Array.from({ length: 20 }, () => 200), 'all 20 in-flight requests got their answer')
  t.ok(isDraining, 'not ready while draining')
  t.match(readiness, { checks: [{ name: 'draining', isReady: false }] })
  t.equal(code, 0)
  t.match(broker.output(), /"msg":"draining"/)
})

t.test('POST /reload: restart-only changes are refused by path, reloadable ones apply, and reloads asked for together run one at a time', async t => {
  const env = await environment(t)
  const fileOptions = { allowInsecurePermissions: false }
  const loaded = await loadConfigFiles(env.configPath, fileOptions)
  const logs = captureLogs()
  let loads = 0
  let loading = 0
  let mostAtOnce = 0
  const broker = await startBroker(loaded.config, loaded.credentials, logs.logger, {
    callerSecrets: loaded.callerSecrets,
    // A clock that stands still: the rate-limit bucket cannot refill while the requests below are sent.
    clock: createManualClock(),
    load: async () => {
      loads++
      mostAtOnce = Math.max(mostAtOnce, ++loading)
      try {
        return await loadConfigFiles(env.configPath, fileOptions)
      } finally {
        loading--
      }
    }
  })
  t.teardown(async () => { await broker.close() })
  const reload = async (): Promise<Response> => await fetch(`${broker.adminUrl}/reload`, { method: 'POST' })
  const granfjelldal = '  granfjelldal: { client: keys/granfjelldal.json, organization: { child: "999977776" }, apis: [persontjenesten] }\n'
  const fjordvik = '  fjordvik: { client: keys/granfjelldal.json, organization: { child: "999977775" }, apis: [persontjenesten] }\n'
  t.equal((await fetch(`${broker.proxyUrl}/granfjelldal/${events}`)).status, 200)

  await env.writeConfig(granfjelldal + fjordvik, `listen: { proxy: "127.0.0.1:1", admin: "127.0.0.1:0" }
limits: { maxConcurrentUpstream: 8, rateLimit: { requestsPerSecond: 5, burst: 5 } }`)
  const restartOnly = await reload()
  const refused = await restartOnly.json() as { code: string, detail: string }

  t.equal(restartOnly.status, 422)
  t.equal(refused.code, 'BROKER_RELOAD_REFUSED')
  t.match(refused.detail, /listen\.proxy: changed; restart the broker to apply it/)
  t.match(refused.detail, /limits\.maxConcurrentUpstream: changed/)
  t.notMatch(refused.detail, /rateLimit/, 'a reloadable change is not named')
  t.equal((await fetch(`${broker.proxyUrl}/fjordvik/${events}`)).status, 404, 'refused whole: the new tenant is not there')

  await env.writeConfig(granfjelldal + fjordvik, `listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }
limits: { rateLimit: { requestsPerSecond: 5, burst: 5 } }`)
  const loadsBefore = loads
  const together = await Promise.all([reload(), reload(), reload()])

  t.same(together.map(response => response.status), [200, 200, 200])
  t.match(await together[0]?.json(), { status: 'reloaded', tenants: ['granfjelldal', 'fjordvik'] })
  t.equal(loads - loadsBefore, 3, 'each reload read the file')
  t.equal(mostAtOnce, 1, 'one after another')
  t.equal((await fetch(`${broker.proxyUrl}/fjordvik/${events}`)).status, 200, 'the new tenant serves')
  const limited = await Promise.all(Array.from({ length: 8 }, async () => (await fetch(`${broker.proxyUrl}/granfjelldal/${events}`)).status))
  t.ok(limited.includes(429), `the new rate limit applies (${limited.join(' ')})`)
  t.equal(env.authority.issuedTokens.length, 2, 'granfjelldal kept its cached token; fjordvik got one')
})
