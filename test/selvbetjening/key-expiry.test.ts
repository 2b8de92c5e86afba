// Key expiry in `serve`: read from Selvbetjening at start, shown in /status, /metrics and /readyz, warned about below keys.warnDays.

import t, { type Test } from 'tap'
import { createServer, type Socket } from 'node:net'
import { startBroker, type RunningBroker } from '../../src/app.ts'
import type { BrokerConfig } from '../../src/config/config.ts'
import type { TenantCredentials } from '../../src/keys/tenant-keys.ts'
import { privateJwk, publicOnly } from '../fixtures/client-key-files.ts'
import { captureLogs, logLines } from '../helpers/capture-logs.ts'
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts'

const dayMs = 86_400_000

interface Readiness { status: string, checks: Array<{ name: string, isReady: boolean, detail: string }> }
interface KeyStatus { kid: string, expiresAt: string | null, daysLeft: number | null, expiryCheckedAt: string | null, expiryError: string | null }
interface Status { tenants: Array<{ name: string, key: KeyStatus }> }
async function startMonitoredBroker (t: Test): Promise<TestBroker> {
  const broker = await startTestBroker(t, { broker: { checkKeyExpiry: true } })
  await broker.broker.deps.keyExpiry.checkNow() // joins the round start-up began
  return broker
}

async function readyz (admin: string): Promise<{ status: number, keyExpiry: Readiness['checks'][number] | undefined }> {
  const response = await fetch(`${admin}/readyz`)
  const body = await response.json() as Readiness
  return { status: response.status, keyExpiry: body.checks.find(check => check.name === 'keyExpiry') }
}

async function keyOf (admin: string, tenant: string): Promise<KeyStatus | undefined> {
  const status = await (await fetch(`${admin}/status`)).json() as Status
  return status.tenants.find(entry => entry.name === tenant)?.key
}

function kidOf (broker: TestBroker, tenant: string): string {
  return broker.broker.deps.tenants.get(tenant)?.credentials.key.kid ?? ''
}

t.test('at start every key\'s expiry is read once and shown in /status, /metrics and /readyz', async t => {
  const broker = await startMonitoredBroker(t)
  const gfKid = kidOf(broker, 'granfjelldal')
  const [secret] = broker.selvbetjening.secrets('demo-granfjelldal-epj')

  const key = await keyOf(broker.broker.adminUrl, 'granfjelldal')
  const metrics = await (await broker.admin('/metrics')).text()
  const ready = await readyz(broker.broker.adminUrl)

  t.same(broker.selvbetjening.received.map(request => [request.method, request.clientId]).sort(), [['GET', 'demo-epj-supplier'], ['GET', 'demo-granfjelldal-epj']], 'one GET per client key')
  t.match(key, { kid: gfKid, expiresAt: secret?.expiration, daysLeft: Number, expiryCheckedAt: String, expiryError: null })
  t.ok((key?.daysLeft ?? 0) >= 729 && (key?.daysLeft ?? 0) <= 731, `about two years (${String(key?.daysLeft)} days)`)
  const gauge = new RegExp(`^helseid_broker_key_expiry_seconds\\{tenant="granfjelldal",kid="${gfKid}"\\} ([\\d.e+]+)$`, 'm').exec(metrics)
  t.ok(gauge, 'key expiry gauge per tenant and kid')
  t.ok(Math.abs(Number(gauge?.[1]) - (Date.parse(secret?.expiration ?? '') - Date.now()) / 1000) < 60, 'seconds until the key expires')
  t.match(metrics, /^helseid_broker_key_expiry_seconds\{tenant="fjordvik",kid="[\w-]+"\} /m)
  t.equal(ready.status, 200)
  t.match(ready.keyExpiry, { isReady: true, detail: /granfjelldal: key expires in 7\d\d days; fjordvik: key expires in 7\d\d days/ })
  t.equal(logLines(broker.logs.lines, 'key expiry checked').length, 2)
  t.equal(logLines(broker.logs.lines, 'key expires soon').length, 0)
})

t.test('fewer than warnDays left: a warning line and a readiness detail; more: neither; expired: not ready', async t => {
  const broker = await startMonitoredBroker(t)
  const { deps } = broker.broker
  const kid = kidOf(broker, 'granfjelldal')
  const expireIn = async (ms: number): Promise<void> => {
    broker.selvbetjening.setExpiration('demo-granfjelldal-epj', kid, new Date(Date.now() + ms).toISOString())
    await deps.keyExpiry.checkNow()
  }
  t.equal(broker.config.keys.warnDays, 30)

  await expireIn(29 * dayMs + 3_600_000)
  const soon = logLines(broker.logs.lines, 'key expires soon')
  const soonReady = await readyz(broker.broker.adminUrl)
  const soonKey = await keyOf(broker.broker.adminUrl, 'granfjelldal')

  t.equal(soon.length, 1)
  t.match(soon[0], { level: 40, tenant: 'granfjelldal', kid, daysLeft: 29, warnDays: 30 })
  t.same(Object.keys(soon[0] ?? {}).filter(name => !['level', 'time', 'pid', 'hostname', 'service', 'module', 'msg'].includes(name)).sort(),
    ['clientId', 'daysLeft', 'expiresAt', 'kid', 'tenant', 'warnDays'], 'only these fields; never key material')
  t.equal(soonReady.status, 200, 'a key about to expire keeps the broker ready')
  t.match(soonReady.keyExpiry, { isReady: true, detail: /granfjelldal: key expires in 29 days \(fewer than 30; rotate it\)/ })
  t.equal(soonKey?.daysLeft, 29)

  await expireIn(31 * dayMs + 3_600_000)
  const laterReady = await readyz(broker.broker.adminUrl)

  t.equal(logLines(broker.logs.lines, 'key expires soon').length, 1, 'no new warning')
  t.match(laterReady.keyExpiry?.detail, /granfjelldal: key expires in 31 days;/)
  t.notMatch(laterReady.keyExpiry?.detail, /granfjelldal[^;]*fewer/)

  await expireIn(-dayMs + 3_600_000)
  const expiredReady = await readyz(broker.broker.adminUrl)
  const metrics = await (await broker.admin('/metrics')).text()

  t.equal(expiredReady.status, 503)
  t.match(expiredReady.keyExpiry, { isReady: false, detail: /granfjelldal: key [\w-]+ expired \d{4}-/ })
  t.match(logLines(broker.logs.lines, 'key expired'), [{ level: 50, tenant: 'granfjelldal', kid, daysLeft: -1 }])
  t.match(metrics, new RegExp(`^helseid_broker_key_expiry_seconds\\{tenant="granfjelldal",kid="${kid}"\\} -8\\d{4}`, 'm'), 'negative seconds once expired')
  t.equal((await keyOf(broker.broker.adminUrl, 'granfjelldal'))?.daysLeft, -1)
})

t.test('a failed check is logged and shown; the last known expiry stays; the broker stays ready', async t => {
  const broker = await startMonitoredBroker(t)
  const before = await keyOf(broker.broker.adminUrl, 'granfjelldal')

  broker.selvbetjening.setMode('unavailable')
  await broker.broker.deps.keyExpiry.checkNow()
  const after = await keyOf(broker.broker.adminUrl, 'granfjelldal')
  const ready = await readyz(broker.broker.adminUrl)

  t.equal(after?.expiresAt, before?.expiresAt)
  t.equal(after?.expiryCheckedAt, before?.expiryCheckedAt, 'checkedAt is the last successful check')
  t.match(after?.expiryError, /^BROKER_SELVBETJENING_FAILED: Selvbetjening GET \/v1\/client-secret answered HTTP 503/)
  t.equal(ready.status, 200)
  t.match(ready.keyExpiry?.detail, /key expires in 7\d\d days; last check failed: BROKER_SELVBETJENING_FAILED/)
  // Tenants are checked concurrently, so the order of their lines is not fixed.
  const failed = logLines(broker.logs.lines, 'key expiry check failed')
  t.match(failed.find(line => line.tenant === 'granfjelldal'), { level: 40, tenant: 'granfjelldal', code: 'BROKER_SELVBETJENING_FAILED' })

  broker.selvbetjening.setMode('ok')
  const fjordvik = broker.broker.deps.tenants.get('fjordvik')
  if (fjordvik === undefined) throw new Error('no fjordvik')
  const caller = { tenant: 'fjordvik', clientId: fjordvik.credentials.clientId, key: fjordvik.credentials.key, dpopKey: fjordvik.dpopKey }
  await broker.broker.deps.selvbetjening.registerClientSecret(caller, { ...publicOnly(await privateJwk('RSA-2048')), kid: 'successor' })
  broker.selvbetjening.retireKey('demo-epj-supplier', kidOf(broker, 'fjordvik'))
  await broker.broker.deps.keyExpiry.checkNow()
  t.equal((await keyOf(broker.broker.adminUrl, 'granfjelldal'))?.expiryError, null, 'recovers on the next check')
  t.match((await keyOf(broker.broker.adminUrl, 'fjordvik'))?.expiryError, /^Selvbetjening lists 1 key\(s\) for client demo-epj-supplier, none with kid [\w-]+ or this key's thumbprint$/,
    'a key Selvbetjening no longer lists (the cached token still reads the list)')
})

t.test('start-up does not wait for Selvbetjening, and tenants sharing a client file are checked once', async t => {
  const base = await startTestBroker(t)
  const hanging = await startHangingServer(t)
  const granfjelldal = base.broker.deps.tenants.get('granfjelldal')?.credentials
  if (granfjelldal === undefined) throw new Error('no credentials')
  const tenants = base.config.tenants
  const shared: BrokerConfig = {
    ...base.config,
    helseid: { ...base.config.helseid, selvbetjeningUrl: hanging.origin, timeoutMs: 1500 },
    listen: { ...base.config.listen, proxy: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
    tenants: { granfjelldal: tenants.granfjelldal!, nordvik: { ...tenants.granfjelldal!, name: 'nordvik' } }
  }
  const credentials = new Map<string, TenantCredentials>([
    ['granfjelldal', granfjelldal],
    ['nordvik', { ...granfjelldal, tenant: 'nordvik' }]
  ])

  const startedAt = Date.now()
  const broker: RunningBroker = await startBroker(shared, credentials, captureLogs().logger, {})
  const startMs = Date.now() - startedAt
  const pending = await readyz(broker.adminUrl)

  t.ok(startMs < 1000, `listening after ${startMs} ms while Selvbetjening does not answer`)
  t.equal(pending.status, 200)
  t.match(pending.keyExpiry, { isReady: true, detail: 'granfjelldal, nordvik: key expiry not checked yet' })

  const hung = await broker.deps.keyExpiry.checkNow()
  t.equal(hanging.connections(), 1, 'one request for the two tenants')
  t.match(hung, [{ tenants: ['granfjelldal', 'nordvik'], lastError: /unreachable \(timeout\)/ }])
  t.match(await keyOf(broker.adminUrl, 'nordvik'), { expiresAt: null, expiryError: /timeout/ })
  t.equal((await readyz(broker.adminUrl)).status, 200, 'never fatal')
  await broker.close()
})

/** A TCP server that accepts connections and never answers. */
async function startHangingServer (t: Test): Promise<{ origin: string, connections: () => number }> {
  const sockets: Socket[] = []
  const server = createServer(socket => { sockets.push(socket) })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { origin: `http://127.0.0.1:${address.port}`, connections: () => sockets.length }
}
