// The Selvbetjening client against the fake API: tokens through the broker's cache, a proof per call, the nonce retry, strict parsing.

import t, { type Test } from 'tap'
import { decodeJwt } from 'jose'
import { selvbetjeningClientScope } from '../../src/demo/fake-selvbetjening.ts'
import { BrokerError } from '../../src/errors.ts'
import { findClientSecret, parseClientSecretList, parseRegisteredClientSecret, SelvbetjeningError } from '../../src/selvbetjening/client-secrets.ts'
import { createSelvbetjeningClient, selvbetjeningScope, type SelvbetjeningCaller } from '../../src/selvbetjening/selvbetjening-client.ts'
import { privateJwk, privateValues, publicOnly } from '../fixtures/client-key-files.ts'
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts'
import { closedPort } from '../helpers/closed-port.ts'

function callerOf (broker: TestBroker, tenant: string): SelvbetjeningCaller {
  const runtime = broker.broker.deps.tenants.get(tenant)
  if (runtime === undefined) throw new Error(`no tenant ${tenant}`)
  return { tenant, clientId: runtime.credentials.clientId, key: runtime.credentials.key, dpopKey: runtime.dpopKey }
}


async function rejection (t: Test, promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  t.fail('expected a rejection')
  return undefined
}

t.test('the scope is the one the fake Selvbetjening demands', async t => {
  t.equal(selvbetjeningScope, selvbetjeningClientScope)
})

t.test('listClientSecrets: a DPoP token for nhn:selvbetjening/client, a proof per call, the nonce challenge answered once', async t => {
  const broker = await startTestBroker(t, { selvbetjening: { requireNonce: true } })
  const { selvbetjening } = broker.broker.deps
  const caller = callerOf(broker, 'granfjelldal')

  const secrets = await selvbetjening.listClientSecrets(caller)
  const again = await selvbetjening.listClientSecrets(caller)

  t.equal(secrets.length, 1)
  t.match(secrets[0], { kid: caller.key.kid, jwkThumbprint: caller.key.thumbprint, origin: 'Gui', expiration: String, expiresAtMs: Number })
  t.same(again, secrets)
  t.same(findClientSecret(secrets, caller.key), secrets[0])
  const received = broker.selvbetjening.received
  t.same(received.map(request => [request.method, request.outcome]), [['GET', 'use_dpop_nonce'], ['GET', 'ok'], ['GET', 'ok']], 'one nonce retry, then the nonce is remembered')
  const [, first, second] = received
  t.match(first?.proofClaims, { htm: 'GET', htu: `${broker.selvbetjening.origin}/v1/client-secret`, ath: String, nonce: String })
  t.not(first?.proofClaims?.jti, second?.proofClaims?.jti, 'a fresh proof per call')
  t.match(first?.tokenClaims, { client_id: 'demo-granfjelldal-epj', scope: [selvbetjeningScope], cnf: { jkt: caller.dpopKey.jkt } })
  const issued = broker.authority.tokenRequests.filter(request => request.outcome === 'issued')
  t.equal(issued.length, 1, 'the token came from the broker\'s cache the second time')
  t.equal(issued[0]?.scope, selvbetjeningScope)
  t.equal(issued[0]?.assertionDetails, undefined, 'no organisation numbers for Selvbetjening')
  t.ok(broker.broker.deps.tokens.snapshot().some(token => token.tenant === 'granfjelldal' && token.api === 'selvbetjening'))
})

t.test('a multi-tenant supplier client lists its keys too', async t => {
  const broker = await startTestBroker(t)
  const caller = callerOf(broker, 'fjordvik')

  const secrets = await broker.broker.deps.selvbetjening.listClientSecrets(caller)

  t.match(secrets, [{ kid: caller.key.kid }])
  t.equal(broker.selvbetjening.received.at(-1)?.clientId, 'demo-epj-supplier')
})

t.test('registerClientSecret: the new public key is registered next to the current one; the expiry comes back', async t => {
  const broker = await startTestBroker(t)
  const { selvbetjening } = broker.broker.deps
  const caller = callerOf(broker, 'granfjelldal')
  const newJwk = { ...publicOnly(await privateJwk('RSA-2048')), kid: 'next-key', alg: 'PS256', use: 'sig' }

  const registered = await selvbetjening.registerClientSecret(caller, newJwk)

  t.match(registered, { expiration: String, expiresAtMs: Number })
  t.ok(registered.expiresAtMs > Date.now() + 700 * 86_400_000)
  const post = broker.selvbetjening.received.at(-1)
  t.equal(post?.method, 'POST')
  t.equal(post?.contentType, 'application/json')
  t.same(JSON.parse(post?.body ?? ''), newJwk, 'the body is the JWK object')
  t.match(post?.proofClaims, { htm: 'POST', htu: `${broker.selvbetjening.origin}/v1/client-secret` })
  const secrets = await selvbetjening.listClientSecrets(caller)
  t.same(secrets.map(secret => secret.kid), [caller.key.kid, 'next-key'])
  t.equal(findClientSecret(secrets, { kid: 'next-key', thumbprint: 'x' })?.expiresAtMs, registered.expiresAtMs)
  t.equal(findClientSecret(secrets, { kid: 'renamed', thumbprint: caller.key.thumbprint })?.kid, caller.key.kid, 'matched by thumbprint when the kid differs')
  t.equal(findClientSecret(secrets, { kid: 'renamed', thumbprint: 'other' }), undefined)
})

t.test('registerClientSecret: a refused JWK is sent once more as a JSON string, then the problem is reported', async t => {
  const broker = await startTestBroker(t)
  const caller = callerOf(broker, 'granfjelldal')
  const weak = publicOnly(await privateJwk('RSA-1024'))

  const error = await rejection(t, broker.broker.deps.selvbetjening.registerClientSecret(caller, weak))
  const privateError = await rejection(t, broker.broker.deps.selvbetjening.registerClientSecret(caller, await privateJwk('RSA-2048')))

  t.type(error, SelvbetjeningError)
  t.match(error, { code: 'BROKER_SELVBETJENING_FAILED', statusCode: 502, httpStatus: 400, problem: { title: 'Bad Request', detail: /1024 bits/ } })
  t.match((error as Error).message, 'answered HTTP 400: Bad Request - the RSA key has 1024 bits')
  const posts = broker.selvbetjening.received.filter(request => request.method === 'POST')
  t.equal(posts.length, 2)
  t.same(JSON.parse(posts[0]?.body ?? ''), weak)
  t.equal(JSON.parse(posts[1]?.body ?? ''), JSON.stringify(weak), 'the second body is a JSON string literal')
  t.match(broker.logs.text(), 'selvbetjening refused the jwk object; sending it as a json string')
  t.type(privateError, TypeError, 'a private key is never sent')
  t.equal(broker.selvbetjening.received.filter(request => request.method === 'POST').length, 2)
  const log = broker.logs.text()
  for (const value of privateValues(await privateJwk('RSA-2048'))) t.notOk(log.includes(value.slice(0, 20)), 'no private member in the log')
})

t.test('an unusable answer, an error status and an unreachable API are BROKER_SELVBETJENING_FAILED', async t => {
  const broker = await startTestBroker(t)
  const caller = callerOf(broker, 'granfjelldal')
  const { deps } = broker.broker

  broker.selvbetjening.setMode('malformed')
  const malformed = await rejection(t, deps.selvbetjening.listClientSecrets(caller))
  const malformedPost = await rejection(t, deps.selvbetjening.registerClientSecret(caller, { ...publicOnly(await privateJwk('P-256')), kid: 'p256' }))
  broker.selvbetjening.setMode('unavailable')
  const unavailable = await rejection(t, deps.selvbetjening.listClientSecrets(caller))
  const unreachable = createSelvbetjeningClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, tokens: deps.tokens, fetch, clock: deps.clock, timeoutMs: 2000 })
  const refused = await rejection(t, unreachable.listClientSecrets(caller))

  t.match(malformed, { code: 'BROKER_SELVBETJENING_FAILED', message: /not a JSON array|other than a JSON array/ })
  t.match(malformedPost, { code: 'BROKER_SELVBETJENING_FAILED', message: /without an ISO 8601 expiration/ })
  t.match(unavailable, { code: 'BROKER_SELVBETJENING_FAILED', httpStatus: 503, message: /HTTP 503: Service Unavailable/ })
  t.match(refused, { code: 'BROKER_SELVBETJENING_FAILED', message: /unreachable \(ECONNREFUSED\)/ })
})

t.test('a client without the Selvbetjening scope gets the HelseID refusal', async t => {
  const broker = await startTestBroker(t)
  const caller = callerOf(broker, 'granfjelldal')
  const registered = broker.authority.registeredClient(caller.clientId)
  if (registered === undefined) throw new Error('not registered')
  broker.authority.registerClient({ ...registered, scopes: registered.scopes.filter(scope => scope !== selvbetjeningScope) })

  const error = await rejection(t, broker.broker.deps.selvbetjening.listClientSecrets(caller))

  t.type(error, BrokerError)
  t.match(error, { code: 'BROKER_IDP_REJECTED', oauthError: 'invalid_scope' })
  t.equal(broker.selvbetjening.received.length, 0)
})

t.test('parseClientSecretList and parseRegisteredClientSecret are strict', async t => {
  const entry = { expiration: '2027-05-01T10:00:00+02:00', kid: 'k', jwkThumbprint: 't', origin: 'Api', publicJwk: null }

  t.match(parseClientSecretList(JSON.stringify([entry, { ...entry, kid: null, origin: undefined, extra: 1 }])), [
    { kid: 'k', jwkThumbprint: 't', origin: 'Api', expiration: entry.expiration, expiresAtMs: Date.parse('2027-05-01T08:00:00Z') },
    { kid: null, origin: null }
  ])
  t.same(parseClientSecretList('[]'), [])
  for (const [text, message] of [
    ['{"secrets":[]}', /JSON array/],
    ['not json', /other than JSON/],
    [JSON.stringify([1]), /\[0\] is not an object/],
    [JSON.stringify([{ ...entry, expiration: '2027-05-01T10:00:00' }]), /ISO 8601 expiration with offset/],
    [JSON.stringify([{ ...entry, expiration: 'tomorrow' }]), /ISO 8601/],
    [JSON.stringify([{ ...entry, expiration: undefined }]), /ISO 8601/],
    [JSON.stringify([{ ...entry, kid: 7 }]), /kid as number/]
  ] as const) {
    t.throws(() => parseClientSecretList(text), { code: 'BROKER_SELVBETJENING_FAILED', message }, text)
  }
  t.same(parseRegisteredClientSecret('{"expiration":"2025-12-31T13:13:13Z"}'), { expiration: '2025-12-31T13:13:13Z', expiresAtMs: Date.parse('2025-12-31T13:13:13Z') })
  t.throws(() => parseRegisteredClientSecret('[]'), { code: 'BROKER_SELVBETJENING_FAILED' })
  t.throws(() => parseRegisteredClientSecret('{"expiration":12}'), { code: 'BROKER_SELVBETJENING_FAILED' })
})

t.test('the token the client used is a JWT for the Selvbetjening audience', async t => {
  const broker = await startTestBroker(t)
  await broker.broker.deps.selvbetjening.listClientSecrets(callerOf(broker, 'granfjelldal'))

  const [token] = broker.authority.issuedTokens
  t.match(decodeJwt(token ?? ''), { aud: 'nhn:selvbetjening', scope: [selvbetjeningScope] })
})

t.test('a token Selvbetjening no longer accepts is replaced once, and the call goes through, a POST too', async t => {
  const broker = await startTestBroker(t)
  const { selvbetjening } = broker.broker.deps
  const caller = callerOf(broker, 'granfjelldal')
  const issuedForSelvbetjening = (): number => broker.authority.tokenRequests.filter(request => request.outcome === 'issued' && request.scope === selvbetjeningScope).length
  await selvbetjening.listClientSecrets(caller)

  // A new signing key at the authority: the cached token no longer verifies at Selvbetjening.
  await broker.authority.rotateSigningKey()
  const listed = await selvbetjening.listClientSecrets(caller)
  await broker.authority.rotateSigningKey()
  await selvbetjening.registerClientSecret(caller, { ...publicOnly(await privateJwk('P-256')), kid: 'after-new-signing-key' })

  t.equal(listed.length, 1)
  t.match(broker.selvbetjening.received.map(request => [request.method, request.outcome]), [
    ['GET', 'ok'],
    ['GET', /^invalid_token/], ['GET', 'ok'],
    ['POST', /^invalid_token/], ['POST', 'ok']
  ], 'each refused call is sent again once, with a new token (a 401 was not acted on, so a POST may be repeated)')
  t.equal(broker.selvbetjening.received.length, 5)
  t.equal(issuedForSelvbetjening(), 3, 'one token, then one new token per refusal')
  t.ok(broker.selvbetjening.secrets(caller.clientId).some(secret => secret.kid === 'after-new-signing-key'), 'the key was registered once')
})
