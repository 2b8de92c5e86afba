import t from 'tap'
import { demoNin } from '../../src/demo/synthetic-persons.ts'
import { maskPath } from '../../src/logging.ts'
import { privateJwk, privateValues, publicOnly } from '../fixtures/client-key-files.ts'
import { rawRequest, startTestBroker } from '../helpers/test-broker.ts'

// Canaries: values that must never reach a log line at any level.
const ninInPath = '04765220365'
const ninInQuery = '23727830251'
const callerSecret = 'CANARY-caller-secret-7f3a'
const callerCookie = 'CANARY-cookie-91b2'

t.test('no token, proof, assertion, key part, caller secret or national identity number reaches the log', async t => {
  const broker = await startTestBroker(t, { apiTimeoutMs: 1500, persontjenesten: { jwksCacheMaxAgeMs: 0 } })
  const base = '/granfjelldal/persontjenesten/api/v3/restricted-access'
  const headers = { authorization: `Bearer ${callerSecret}`, cookie: callerCookie, dpop: callerSecret }

  await broker.call(`${base}/person/get-by-nin?informationParts=Name&nin=${ninInQuery}`, {
    method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: `nin=${demoNin}`
  })
  await broker.call(`${base}/person/${ninInPath}?informationParts=Name`, { headers })
  await broker.call(`/fjordvik/persontjenesten/api/v3/restricted-access/event/latest?nin=${ninInQuery}`, { headers })
  await rawRequest(broker.broker.proxyUrl, `${base}/person/%2e%2e/${ninInPath}`, { headers })
  await broker.call(`/nosuchtenant/persontjenesten/${ninInPath}`, { headers })
  await broker.call(`/${ninInPath}/persontjenesten/api`, { headers })
  await broker.call(`/granfjelldal/${ninInPath}/api`, { headers })
  broker.persontjenesten.setResponseDelayMs(5000) // past apiTimeoutMs; the fake cuts the wait short when it closes
  await broker.call(`${base}/person/${ninInPath}?informationParts=Name`, { headers })
  broker.persontjenesten.setResponseDelayMs(0)
  broker.authority.registerClient({ clientId: 'demo-granfjelldal-epj', publicJwks: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }], scopes: [] })
  await broker.authority.rotateSigningKey()
  await broker.call(`${base}/person/${ninInPath}?informationParts=Name`, { headers })
  await broker.admin('/status')
  await broker.admin('/metrics')

  const log = broker.logs.text()
  t.ok(broker.logs.lines.length > 10, 'the flows were logged')
  t.match(log, /"msg":"request completed"/)
  t.match(log, /"msg":"token fetched"/)
  t.match(log, /"code":"BROKER_UPSTREAM_TIMEOUT"/, 'failures are logged, by code')
  t.match(log, /"code":"BROKER_IDP_REJECTED"/, 'the refused client was exercised and logged')
  t.match(log, /"code":"BROKER_PATH_REJECTED"/)
  t.notMatch(log, /eyJ/, 'no JWT of any kind: token, proof or client assertion')
  for (const token of broker.authority.issuedTokens) t.notOk(log.includes(token), 'issued token absent')
  for (const received of broker.persontjenesten.received) {
    t.notOk(log.includes(String(received.headers.dpop)), 'proof absent')
  }
  for (const canary of [demoNin, ninInPath, ninInQuery, callerSecret, callerCookie]) {
    t.notOk(log.includes(canary), `${canary.slice(0, 6)}… absent`)
  }
  t.notMatch(log, /"(d|p|q|dp|dq|qi)":"[A-Za-z0-9_-]{20,}"/, 'no private key member')
  t.match(log, /\/person\/\{id\}/, 'identifier-shaped path segments are masked, not dropped')
})

t.test('the Selvbetjening flows (key expiry, key registration) log no token, proof or key', async t => {
  const broker = await startTestBroker(t, { broker: { checkKeyExpiry: true }, selvbetjening: { requireNonce: true } })
  const { deps } = broker.broker
  const tenant = deps.tenants.get('granfjelldal')
  if (tenant === undefined) throw new Error('no tenant')
  const caller = { tenant: 'granfjelldal', clientId: tenant.credentials.clientId, key: tenant.credentials.key, dpopKey: tenant.dpopKey }
  const next = await privateJwk('RSA-2048')
  await deps.keyExpiry.checkNow()
  broker.selvbetjening.setExpiration(caller.clientId, caller.key.kid, new Date(Date.now() + 86_400_000).toISOString())
  await deps.keyExpiry.checkNow()
  await deps.selvbetjening.registerClientSecret(caller, publicOnly(await privateJwk('RSA-1024'))).catch(() => {})
  await deps.selvbetjening.registerClientSecret(caller, publicOnly(next))
  broker.selvbetjening.setMode('unavailable')
  await deps.keyExpiry.checkNow()
  await broker.admin('/status')
  await broker.admin('/readyz')

  const log = broker.logs.text()
  t.match(log, /"msg":"key expires soon"/)
  t.match(log, /"msg":"key expiry check failed"/)
  t.match(log, /"msg":"selvbetjening refused the jwk object; sending it as a json string"/)
  t.notMatch(log, /eyJ/, 'no JWT of any kind: token, proof or client assertion')
  for (const token of broker.authority.issuedTokens) t.notOk(log.includes(token), 'issued token absent')
  t.notMatch(log, /"(d|p|q|dp|dq|qi)":"[A-Za-z0-9_-]{20,}"/, 'no private key member')
  for (const value of privateValues(next)) t.notOk(log.includes(value.slice(0, 20)), 'the new private key is absent')
  t.notOk(log.includes(String(next.n).slice(0, 40)), 'not even the registered public key is logged')
})

t.test('maskPath drops the query and masks identifier-shaped segments', async t => {
  t.equal(maskPath('/t/a/api/v3/person/12345678901?nin=1'), '/t/a/api/v3/person/{id}')
  t.equal(maskPath('/t/a/api/v3/person/3f9c5e31aa3f9c5e31aa3f9c5e31aa3f9c5e31aa'), '/t/a/api/v3/person/{id}')
  t.equal(maskPath('/t/a/api/v3/person/%31%32%33%34%35%36'), '/t/a/api/v3/person/{id}')
  t.equal(maskPath('/t/a/api/v3/restricted-access/event/latest'), '/t/a/api/v3/restricted-access/event/latest')
})
