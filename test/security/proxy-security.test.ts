import t from 'tap'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'node:net'
import { demoNin } from '../../src/demo/synthetic-persons.ts'
import type { CallerConfig } from '../../src/config/config.ts'
import type { CallerSecret } from '../../src/security/caller-secrets.ts'
import { hashSecret, parseSecretHash } from '../../src/security/secret-hash.ts'
import { rawRequest, startTestBroker } from '../helpers/test-broker.ts'
import { createManualClock } from '../../src/clock.ts'

const events = '/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest'
const otherTenant = '/fjordvik/persontjenesten/api/v3/restricted-access/event/latest'
const getByNin = '/granfjelldal/persontjenesten/api/v3/restricted-access/person/get-by-nin?informationParts=Name'
const epjSecret = 'epj-secret-0123456789abcdef'
const opsSecret = 'ops-secret-fedcba9876543210'

async function callerSetup (): Promise<{ callers: Record<string, CallerConfig>, secrets: Map<string, CallerSecret> }> {
  const hash = parseSecretHash(await hashSecret(epjSecret))
  if (typeof hash === 'string') throw new TypeError(hash)
  return {
    callers: {
      epj: { name: 'epj', secret: { kind: 'hash', hash: 'unused-in-runtime' }, tenants: ['granfjelldal'], allow: [] },
      ops: { name: 'ops', secret: { kind: 'file', file: '/dev/null' }, tenants: '*', allow: [{ method: 'GET', pattern: '/api/v3/restricted-access/event/**', text: 'GET /api/v3/restricted-access/event/**' }] }
    },
    secrets: new Map<string, CallerSecret>([
      ['epj', { kind: 'hash', hash }],
      ['ops', { kind: 'plain', sha256: createHash('sha256').update(opsSecret).digest() }]
    ])
  }
}

t.test('with callers configured, a request needs a valid caller secret: Bearer or Basic', async t => {
  const { callers, secrets } = await callerSetup()
  const broker = await startTestBroker(t, { callers, broker: { callerSecrets: secrets } })

  const none = await broker.call(events)
  const wrong = await broker.call(events, { headers: { authorization: 'Bearer not-the-secret-at-all' } })
  const bearer = await broker.call(events, { headers: { authorization: `Bearer ${epjSecret}` } })
  const basic = await broker.call(events, { headers: { authorization: `Basic ${Buffer.from(`epj:${epjSecret}`).toString('base64')}` } })
  const basicWrongUser = await broker.call(events, { headers: { authorization: `Basic ${Buffer.from(`ops:${epjSecret}`).toString('base64')}` } })
  // http://epj:secret@127.0.0.1/... as a legacy client sends it: node:http turns `auth` into Basic.
  const userinfo = await rawRequest(broker.broker.proxyUrl, events, { auth: `epj:${epjSecret}` })

  t.equal(none.status, 401)
  t.equal(none.headers.get('helseid-broker-error'), 'BROKER_CALLER_UNAUTHENTICATED')
  t.match(none.headers.get('www-authenticate'), /Bearer realm="helseid-broker".*Basic realm="helseid-broker"/)
  t.equal(wrong.status, 401)
  t.equal(bearer.status, 200)
  t.equal(basic.status, 200)
  t.equal(basicWrongUser.status, 401, 'a Basic user name must own the secret')
  t.equal(userinfo.status, 200)
  for (const received of broker.persontjenesten.received) {
    t.match(String(received.headers.authorization), /^DPoP /, 'the caller secret is replaced, never forwarded')
  }
  t.notOk(broker.logs.text().includes(epjSecret), 'the secret is never logged')
})

t.test('repeated wrong secrets are slowed down before they cost scrypt work', async t => {
  const { callers, secrets } = await callerSetup()
  // A clock that stands still: no bucket refills while scrypt takes its time.
  const broker = await startTestBroker(t, { callers, broker: { callerSecrets: secrets, clock: createManualClock() } })

  const statuses: number[] = []
  for (let i = 0; i < 25; i++) {
    statuses.push((await broker.call(events, { headers: { authorization: `Bearer wrong-secret-number-${i}` } })).status)
  }
  const good = await broker.call(events, { headers: { authorization: `Bearer ${epjSecret}` } })

  t.same(statuses.slice(0, 20), Array.from({ length: 20 }, () => 401), 'the first 20 failures are answered 401')
  t.ok(statuses.slice(20).every(status => status === 429), 'then 429 with no secret check at all')
  t.equal(good.status, 429, 'the address is blocked for a moment, whoever sends from it')
})

t.test('a caller limited to one tenant cannot reach another, and the refusal costs no token', async t => {
  const { callers, secrets } = await callerSetup()
  const broker = await startTestBroker(t, { callers, broker: { callerSecrets: secrets } })

  const refused = await broker.call(otherTenant, { headers: { authorization: `Bearer ${epjSecret}` } })

  t.equal(refused.status, 403)
  t.equal(refused.headers.get('helseid-broker-error'), 'BROKER_CALLER_FORBIDDEN')
  t.equal(broker.authority.tokenRequests.length, 0)
  t.equal(broker.persontjenesten.received.length, 0)
})

t.test('allowlists: API-wide and per-caller rules both apply; a refused request costs no token', async t => {
  const { callers, secrets } = await callerSetup()
  const broker = await startTestBroker(t, {
    callers,
    broker: { callerSecrets: secrets },
    apiAllow: [
      { method: 'GET', pattern: '/api/v3/restricted-access/event/*', text: 'GET /api/v3/restricted-access/event/*' },
      { method: 'POST', pattern: '/api/v3/restricted-access/person/get-by-nin', text: 'POST /api/v3/restricted-access/person/get-by-nin' }
    ]
  })
  const epj = { authorization: `Bearer ${epjSecret}` }
  const ops = { authorization: `Bearer ${opsSecret}` }
  const form = { 'content-type': 'application/x-www-form-urlencoded' }

  const allowed = await broker.call(getByNin, { method: 'POST', headers: { ...epj, ...form }, body: `nin=${demoNin}` })
  const head = await broker.call(otherTenant.replace('fjordvik', 'granfjelldal'), { method: 'HEAD', headers: epj })
  const notInApiRules = await broker.call('/granfjelldal/persontjenesten/api/v3/restricted-access/person/bulk-by-nin?informationParts=Name', { method: 'POST', headers: { ...epj, ...form }, body: `nins=${demoNin}` })
  const notInCallerRules = await broker.call(getByNin, { method: 'POST', headers: { ...ops, ...form }, body: `nin=${demoNin}` })
  const inBoth = await broker.call(otherTenant, { headers: ops })

  t.equal(allowed.status, 200)
  t.equal(head.status, 200, 'HEAD passes a GET rule')
  t.equal(notInApiRules.status, 403)
  t.equal(notInApiRules.headers.get('helseid-broker-error'), 'BROKER_ROUTE_NOT_ALLOWED')
  t.equal(notInCallerRules.status, 403)
  t.equal(inBoth.status, 200)
  t.same(broker.persontjenesten.received.map(r => r.path), ['/api/v3/restricted-access/person/get-by-nin', '/api/v3/restricted-access/event/latest', '/api/v3/restricted-access/event/latest'])
  t.equal(broker.authority.issuedTokens.length, 2, 'one token per tenant that was let through, none for refusals')
})

t.test('browser signals and foreign Host names are refused before anything else', async t => {
  const broker = await startTestBroker(t, { allowedOrigins: ['https://epj.kommune.example'] })
  const port = new URL(broker.broker.proxyUrl).port

  const origin = await broker.call(getByNin, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: `nin=${demoNin}` })
  const nullOrigin = await rawRequest(broker.broker.proxyUrl, events, { headers: { origin: 'null' } })
  const crossSite = await rawRequest(broker.broker.proxyUrl, events, { headers: { 'sec-fetch-site': 'cross-site' } })
  const sameSite = await rawRequest(broker.broker.proxyUrl, events, { headers: { 'sec-fetch-site': 'same-site' } })
  const allowedOrigin = await rawRequest(broker.broker.proxyUrl, events, { headers: { origin: 'https://epj.kommune.example' } })
  const rebinding = await rawRequest(broker.broker.proxyUrl, events, { headers: { host: `attacker.example:${port}` } })
  const wrongPort = await rawRequest(broker.broker.proxyUrl, events, { headers: { host: 'localhost:1' } })
  const localhost = await rawRequest(broker.broker.proxyUrl, events, { headers: { host: `localhost:${port}` } })
  const adminRebinding = await rawRequest(broker.broker.adminUrl, '/status', { headers: { host: 'attacker.example' } })

  t.equal(origin.status, 403)
  t.equal(origin.headers.get('helseid-broker-error'), 'BROKER_BROWSER_REFUSED')
  t.equal(nullOrigin.status, 403)
  t.equal(crossSite.status, 403)
  t.equal(sameSite.status, 403)
  t.equal(allowedOrigin.status, 200)
  t.equal(rebinding.status, 403)
  t.equal(rebinding.headers['helseid-broker-error'], 'BROKER_HOST_NOT_ALLOWED')
  t.equal(wrongPort.status, 403)
  t.equal(localhost.status, 200)
  t.equal(adminRebinding.status, 403, 'the admin listener is guarded too')
  t.equal(broker.persontjenesten.received.length, 2, 'only the allowed origin and the localhost call went upstream')
})

t.test('limits: rate, body size and header size', async t => {
  const broker = await startTestBroker(t, {
    limits: { rateLimit: { requestsPerSecond: 1, burst: 2 }, maxBodyBytes: 1000, maxHeaderBytes: 2048, requestTimeoutMs: 400 },
    // A clock that stands still: the bucket cannot refill between the requests, however slow the machine.
    broker: { clock: createManualClock() }
  })
  const form = { 'content-type': 'application/x-www-form-urlencoded' }

  const tooLarge = await broker.call(getByNin, { method: 'POST', headers: form, body: `nin=${'1'.repeat(2000)}` })
  const tooLargeChunked = await broker.call(getByNin, {
    method: 'POST',
    headers: form,
    body: new ReadableStream({ start (controller) { controller.enqueue(new TextEncoder().encode('x'.repeat(3000))); controller.close() } }),
    duplex: 'half'
  } as RequestInit)
  const headers = await rawRequest(broker.broker.proxyUrl, events, { headers: { 'x-big': 'y'.repeat(4096) } })
  const limited = await broker.call(events)

  t.equal(tooLarge.status, 413)
  t.equal(tooLarge.headers.get('helseid-broker-error'), 'BROKER_BODY_TOO_LARGE')
  t.equal(tooLargeChunked.status, 413)
  t.equal(headers.status, 431)
  t.equal(headers.headers['helseid-broker-error'], 'BROKER_HEADERS_TOO_LARGE')
  t.equal(limited.status, 429, 'the third counted request within a second is over the burst of 2 (the 431 never reached the broker)')
  t.equal(limited.headers.get('helseid-broker-error'), 'BROKER_RATE_LIMITED')
  t.match(limited.headers.get('retry-after'), /^\d+$/)

})

t.test('a slow sender is cut off with 408 after limits.requestTimeoutMs', async t => {
  const broker = await startTestBroker(t, { limits: { requestTimeoutMs: 400 } })

  const slow = await new Promise<string>(resolve => {
    const socket = connect(Number(new URL(broker.broker.proxyUrl).port), '127.0.0.1')
    let answer = ''
    socket.on('data', chunk => { answer += chunk.toString('latin1') })
    socket.on('close', () => { resolve(answer) })
    socket.write(`POST ${getByNin} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nnin=1`)
  })
  t.match(slow, /^HTTP\/1\.1 408 /)
  t.match(slow, /helseid-broker-error: BROKER_REQUEST_TIMEOUT/)
  t.equal(broker.persontjenesten.received.length, 0)
})

t.test('a cap on concurrent upstream calls refuses the excess with 503 instead of queueing', async t => {
  const broker = await startTestBroker(t, { limits: { maxConcurrentUpstream: 1 } })
  await broker.call(events)
  broker.persontjenesten.setResponseDelayMs(400)

  const [first, second] = await Promise.all([broker.call(events), broker.call(otherTenant)])

  t.same([first.status, second.status].sort(), [200, 503])
  const refused = first.status === 503 ? first : second
  t.equal(refused.headers.get('helseid-broker-error'), 'BROKER_OVERLOADED')
  t.equal(refused.headers.get('retry-after'), '1')
})

t.test('the audit log holds one line per proxied call, and no secret or identity number', async t => {
  const { callers, secrets } = await callerSetup()
  const dir = t.testdir({})
  const auditFile = join(dir, 'audit', 'audit.jsonl')
  const broker = await startTestBroker(t, { callers, broker: { callerSecrets: secrets }, auditFile })
  const epj = { authorization: `Bearer ${epjSecret}` }

  await broker.call(getByNin, { method: 'POST', headers: { ...epj, 'content-type': 'application/x-www-form-urlencoded' }, body: `nin=${demoNin}` })
  await broker.call(`/granfjelldal/persontjenesten/api/v3/restricted-access/person/${demoNin}?informationParts=Name`, { headers: epj })
  await broker.call(otherTenant, { headers: epj })
  await broker.call(events, { headers: { authorization: 'Bearer wrong-secret-wrong-secret' } })
  await broker.close()

  const text = await readFile(auditFile, 'utf8')
  const lines = text.trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>)
  t.equal(lines.length, 4)
  t.match(lines[0], { event: 'proxied', caller: 'epj', tenant: 'granfjelldal', api: 'persontjenesten', method: 'POST', path: '/granfjelldal/persontjenesten/api/v3/restricted-access/person/get-by-nin', status: 200 })
  t.match(lines[1], { path: '/granfjelldal/persontjenesten/api/v3/restricted-access/person/{id}' })
  t.match(lines[2], { status: 403, code: 'BROKER_CALLER_FORBIDDEN', caller: 'epj' })
  t.match(lines[3], { status: 401, code: 'BROKER_CALLER_UNAUTHENTICATED' })
  t.type(lines[0]?.time, 'string')
  t.type(lines[0]?.durationMs, 'number')
  for (const canary of [demoNin, epjSecret, 'eyJ', 'wrong-secret']) t.notOk(text.includes(canary), `audit log has no ${canary.slice(0, 5)}…`)
})
