// The admin listener: liveness, readiness, metrics, status (never a token or key), docs and problem+json for the rest.

import t, { type Test } from 'tap'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { startBroker, type RunningBroker } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { startFakeAuthority } from '../../src/demo/fake-authority.ts'
import { demoNin } from '../../src/demo/synthetic-persons.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { captureLogs } from '../helpers/capture-logs.ts'
import { startTestBroker } from '../helpers/test-broker.ts'
import { privateJwk, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { closedPort } from '../helpers/closed-port.ts'

const events = (tenant: string): string => `/${tenant}/persontjenesten/api/v3/restricted-access/event/latest`

interface Readiness { status: string, checks: Array<{ name: string, isReady: boolean, detail: string }> }


/** A broker from a real config file whose HelseID issuer is http://127.0.0.1:port, started while nothing answers there. */
async function startBrokerWithoutAuthority (t: Test, port: number): Promise<RunningBroker> {
  const issuer = `http://127.0.0.1:${port}`
  const dir = t.testdir({
    'broker.yaml': `helseid: { issuer: "${issuer}", timeoutMs: 1000 }
apis:
  persontjenesten: { url: "http://127.0.0.1:9", scopes: [nhn:hgd-persontjenesten-api/restricted-access] }
tenants:
  granfjelldal: { client: granfjelldal.json, apis: [persontjenesten] }
`
  })
  await writeJson(dir, 'granfjelldal.json', selvbetjeningDownload(await privateJwk('RSA-2048'), { authority: issuer, clientId: 'gf-client' }))
  const config = await loadConfig(join(dir, 'broker.yaml'))
  const broker = await startBroker(config, await loadTenantCredentials(config), captureLogs().logger, {
    listen: { proxy: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } }
  })
  t.teardown(async () => { await broker.close() })
  return broker
}

/** Every member name anywhere in a JSON value. */
function memberNames (value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(memberNames)
  if (typeof value !== 'object' || value === null) return []
  return Object.entries(value).flatMap(([name, member]) => [name, ...memberNames(member)])
}

t.test('/healthz answers ok', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.admin('/healthz')

  t.equal(response.status, 200)
  t.strictSame(await response.json(), { status: 'ok' })
})

t.test('/readyz is 200 with its checks once keys are loaded and discovery is fetched', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.admin('/readyz')

  t.equal(response.status, 200)
  const body = await response.json() as Readiness
  t.equal(body.status, 'ready')
  t.same(body.checks.map(check => [check.name, check.isReady]), [['keys', true], ['discovery', true]])
  t.match(body.checks[1]?.detail, `${broker.authority.issuer}/connect/token`)
})

t.test('/readyz is 503 while HelseID cannot be reached, and recovers when it can', async t => {
  const port = await closedPort()
  const broker = await startBrokerWithoutAuthority(t, port)

  const response = await fetch(`${broker.adminUrl}/readyz`)
  const health = await fetch(`${broker.adminUrl}/healthz`)

  t.equal(response.status, 503)
  const body = await response.json() as Readiness
  t.equal(body.status, 'not ready')
  t.match(body.checks.find(check => check.name === 'keys'), { isReady: true })
  t.match(body.checks.find(check => check.name === 'discovery'), { isReady: false, detail: /discovery.*http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/ })
  t.equal(health.status, 200, 'alive even when not ready')

  const authority = await startFakeAuthority({ port })
  t.teardown(async () => { await authority.close() })
  let status = 503
  for (let attempt = 0; attempt < 40 && status !== 200; attempt++) {
    status = (await fetch(`${broker.adminUrl}/readyz`)).status
    if (status !== 200) await delay(50)
  }
  t.equal(status, 200, 'a readiness probe starts a new discovery fetch; a later probe sees it')
})

t.test('/metrics is Prometheus text with request counts and token expiry per tenant', async t => {
  const broker = await startTestBroker(t)
  t.equal((await broker.call(events('fjordvik'))).status, 200)

  const response = await broker.admin('/metrics')
  const text = await response.text()

  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.match(text, '# TYPE helseid_broker_requests_total counter')
  t.match(text, /^helseid_broker_requests_total\{(?=[^}]*tenant="fjordvik")(?=[^}]*api="persontjenesten")(?=[^}]*method="GET")(?=[^}]*status="200")[^}]*\} 1$/m)
  const expiry = /^helseid_broker_token_expiry_seconds\{tenant="fjordvik",api="persontjenesten"\} ([\d.]+)$/m.exec(text)
  t.ok(expiry, 'token expiry gauge for the tenant that has a token')
  t.ok(Number(expiry?.[1]) > 0 && Number(expiry?.[1]) <= 300, 'seconds left of the 300 s token')
  t.notMatch(text, /token_expiry_seconds\{tenant="granfjelldal"/, 'no gauge for a tenant without a token')
})

t.test('/status lists tenants, keys and token lifetimes, and never a token or a key', async t => {
  const broker = await startTestBroker(t)
  t.equal((await broker.call(events('fjordvik'))).status, 200)

  const response = await broker.admin('/status')
  const text = await response.text()

  t.equal(response.status, 200)
  const status = JSON.parse(text) as { issuer: string, discoveryFetched: boolean, tenants: Array<Record<string, unknown> & { name: string, apis: Array<{ name: string, token: Record<string, unknown> | null }> }> }
  t.equal(status.issuer, broker.authority.issuer)
  t.equal(status.discoveryFetched, true)
  t.same(status.tenants.map(tenant => tenant.name), ['granfjelldal', 'fjordvik'])
  const [granfjelldal, fjordvik] = status.tenants
  t.match(granfjelldal, {
    clientId: 'demo-granfjelldal-epj',
    organization: { child: '999977776' },
    key: { kid: /^[\w-]{43}$/, alg: 'PS256', kty: 'RSA', sizeBits: 2048, expiresAt: null },
    dpopKeyThumbprint: /^[\w-]{43}$/
  })
  t.equal(granfjelldal?.apis[0]?.token, null, 'no token before the tenant is used')
  t.match(fjordvik, { clientId: 'demo-epj-supplier', organization: { parent: '999977774', child: '999977775' }, key: { alg: 'PS256', sizeBits: 2048 } })
  const api = fjordvik?.apis[0]
  t.match(api, { name: 'persontjenesten', url: broker.persontjenesten.origin, scopes: ['nhn:hgd-persontjenesten-api/restricted-access'] })
  t.match(api?.token, { scopes: ['nhn:hgd-persontjenesten-api/restricted-access'], issuedAt: String, expiresAt: String, refreshAt: String })
  const expiresIn = Number(api?.token?.expiresInSeconds)
  t.ok(expiresIn > 0 && expiresIn <= 300, `token lifetime shown (${expiresIn} s)`)
  const [token] = broker.authority.issuedTokens
  t.equal(fjordvik?.dpopKeyThumbprint, (decodeJwt(token ?? '').cnf as { jkt: string }).jkt, 'the thumbprint is the cnf.jkt of the token')

  t.equal(broker.authority.issuedTokens.length, 1)
  for (const issued of broker.authority.issuedTokens) t.notOk(text.includes(issued), 'the access token is not in /status')
  t.notMatch(text, 'eyJ', 'no JWT of any kind in /status')
  const names = memberNames(status)
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'privateKey', 'privateJwk']) t.notOk(names.includes(member), `no "${member}" member`)
})

t.test('/docs serves the Swagger UI', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.admin('/docs')

  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^text\/html/)
  t.match(await response.text(), /swagger/i)
})

t.test('an unknown admin route is a 404 problem without the path echoed', async t => {
  const broker = await startTestBroker(t)

  const unknown = await broker.admin(`/persons/${demoNin}`)
  const wrongMethod = await fetch(`${broker.broker.adminUrl}/healthz`, { method: 'POST' })

  t.equal(unknown.status, 404)
  t.equal(unknown.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.equal(unknown.headers.get('helseid-broker-error'), 'BROKER_NOT_FOUND')
  const text = await unknown.text()
  t.match(JSON.parse(text), { type: 'urn:helseid-broker:error:BROKER_NOT_FOUND', title: String, status: 404, detail: /\/healthz/, code: 'BROKER_NOT_FOUND', requestId: String })
  t.notOk(text.includes(demoNin), 'no identity number from the path in the error body')
  t.equal(wrongMethod.status, 404)
  t.equal(wrongMethod.headers.get('helseid-broker-error'), 'BROKER_NOT_FOUND')
  t.notOk(broker.logs.text().includes(demoNin), 'nor in the request log')
})
