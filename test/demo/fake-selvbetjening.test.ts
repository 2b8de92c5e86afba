// The fake Selvbetjening API checks tokens and proofs like a resource server and keeps each client's keys at the authority.

import t, { type Test } from 'tap'
import { calculateJwkThumbprint } from 'jose'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { selvbetjeningClientScope, startFakeSelvbetjening, type ClientSecretEntry, type FakeSelvbetjening } from '../../src/demo/fake-selvbetjening.ts'
import { privateJwk, publicOnly } from '../fixtures/client-key-files.ts'
import { createProof, createTestKey, fetchAccessToken, fetchToken, type TestKey } from './dpop-test-kit.ts'

const personScope = 'nhn:hgd-persontjenesten-api/restricted-access'
const dayMs = 86_400_000

interface Setup {
  readonly authority: FakeAuthority
  readonly selvbetjening: FakeSelvbetjening
  readonly clientKey: TestKey
  readonly dpopKey: TestKey
  readonly url: string
  /** A Selvbetjening token for client `gf` (or `scope`). */
  readonly token: (scope?: string, clientKey?: TestKey) => Promise<string>
  /** A request with a fresh, correct proof unless `proof` is given. */
  readonly send: (method: 'GET' | 'POST', token: string, init?: { body?: string, contentType?: string, proof?: string }) => Promise<Response>
}

async function setup (t: Test, options: { requireNonce?: boolean } = {}): Promise<Setup> {
  const authority = await startFakeAuthority()
  const clientKey = await createTestKey('PS256')
  const dpopKey = await createTestKey('ES256')
  authority.registerClient({ clientId: 'gf', publicJwks: [{ ...clientKey.publicJwk, kid: 'old-key' }], scopes: [personScope, selvbetjeningClientScope], organization: '999977774' })
  const selvbetjening = await startFakeSelvbetjening({ authority, ...options })
  t.teardown(async () => { await Promise.all([selvbetjening.close(), authority.close()]) })
  const url = `${selvbetjening.origin}/v1/client-secret`
  return {
    authority,
    selvbetjening,
    clientKey,
    dpopKey,
    url,
    token: async (scope = selvbetjeningClientScope, key = clientKey) => await fetchAccessToken(authority, { clientId: 'gf', clientKey: key, dpopKey, nowMs: Date.now, scope }),
    send: async (method, token, init = {}) => await fetch(url, {
      method,
      headers: {
        authorization: `DPoP ${token}`,
        dpop: init.proof ?? await createProof(dpopKey, { htm: method, htu: url, nowMs: Date.now(), accessToken: token }),
        ...(init.body === undefined ? {} : { 'content-type': init.contentType ?? 'application/json' })
      },
      ...(init.body === undefined ? {} : { body: init.body })
    })
  }
}

t.test('GET /v1/client-secret lists the calling client\'s keys, two years ahead by default', async t => {
  const env = await setup(t)
  const token = await env.token()

  const response = await env.send('GET', token)

  t.equal(response.status, 200)
  const list = await response.json() as ClientSecretEntry[]
  t.equal(list.length, 1)
  t.match(list[0], { kid: 'old-key', jwkThumbprint: env.clientKey.jkt, origin: 'Gui', publicJwk: null })
  const daysLeft = (Date.parse(list[0]?.expiration ?? '') - Date.now()) / dayMs
  t.ok(daysLeft > 729 && daysLeft <= 731, `about two years (${daysLeft} days)`)
  t.match(env.selvbetjening.received.at(-1), { method: 'GET', outcome: 'ok', clientId: 'gf', tokenClaims: { aud: 'nhn:selvbetjening' } })

  env.selvbetjening.setExpiration('gf', 'old-key', '2030-01-02T03:04:05Z')
  const after = await (await env.send('GET', token)).json() as ClientSecretEntry[]
  t.equal(after[0]?.expiration, '2030-01-02T03:04:05.000Z')
  t.throws(() => { env.selvbetjening.setExpiration('gf', 'nosuch', '2030-01-01T00:00:00Z') }, TypeError)
})

t.test('every request is verified: token, scope, proof htm/htu/ath/jti and binding', async t => {
  const env = await setup(t)
  const token = await env.token()
  const wrongKey = await createTestKey('ES256')
  const replayed = await createProof(env.dpopKey, { htm: 'GET', htu: env.url, nowMs: Date.now(), accessToken: token })

  const cases: Array<[string, () => Promise<Response>, number, RegExp]> = [
    ['no token', async () => await fetch(env.url), 401, /^invalid_token:missing authorization/],
    ['Bearer scheme', async () => await fetch(env.url, { headers: { authorization: `Bearer ${token}` } }), 401, /^invalid_token:Bearer/],
    ['no proof', async () => await fetch(env.url, { headers: { authorization: `DPoP ${token}` } }), 401, /^invalid_dpop_proof:DPoP proof missing/],
    ['htm', async () => await env.send('GET', token, { proof: await createProof(env.dpopKey, { htm: 'POST', htu: env.url, nowMs: Date.now(), accessToken: token }) }), 401, /htm mismatch/],
    ['htu', async () => await env.send('GET', token, { proof: await createProof(env.dpopKey, { htm: 'GET', htu: `${env.selvbetjening.origin}/v1/client`, nowMs: Date.now(), accessToken: token }) }), 401, /htu mismatch/],
    ['ath', async () => await env.send('GET', token, { proof: await createProof(env.dpopKey, { htm: 'GET', htu: env.url, nowMs: Date.now(), accessToken: 'another' }) }), 401, /ath mismatch/],
    ['cnf.jkt', async () => await env.send('GET', token, { proof: await createProof(wrongKey, { htm: 'GET', htu: env.url, nowMs: Date.now(), accessToken: token }) }), 401, /cnf\.jkt/],
    ['first use of a proof', async () => await env.send('GET', token, { proof: replayed }), 200, /^ok$/],
    ['replayed jti', async () => await env.send('GET', token, { proof: replayed }), 401, /jti replayed/],
    ['a Persontjenesten token', async () => await env.send('GET', await env.token(personScope)), 401, /^invalid_token:.*"aud"/]
  ]
  for (const [name, request, status, outcome] of cases) {
    const response = await request()
    t.equal(response.status, status, name)
    t.match(env.selvbetjening.received.at(-1)?.outcome, outcome, name)
  }
})

t.test('with requireNonce a proof without the nonce gets the use_dpop_nonce challenge', async t => {
  const env = await setup(t, { requireNonce: true })
  const token = await env.token()

  const first = await env.send('GET', token)
  const nonce = first.headers.get('dpop-nonce') ?? ''
  const second = await env.send('GET', token, { proof: await createProof(env.dpopKey, { htm: 'GET', htu: env.url, nowMs: Date.now(), accessToken: token, nonce }) })

  t.equal(first.status, 401)
  t.match(first.headers.get('www-authenticate'), 'DPoP error="use_dpop_nonce"')
  t.ok(nonce.length > 10)
  t.equal(second.status, 200)
})

t.test('POST registers a new public key next to the old one; both work until the old one is retired', async t => {
  const env = await setup(t)
  const token = await env.token()
  const newKey = await createTestKey('PS256')
  const newJwk = { ...newKey.publicJwk, kid: 'new-key', alg: 'PS256', use: 'sig' }

  const response = await env.send('POST', token, { body: JSON.stringify(newJwk) })

  t.equal(response.status, 200)
  const body = await response.json() as { expiration: string }
  t.same(Object.keys(body), ['expiration'])
  t.ok(Date.parse(body.expiration) > Date.now() + 729 * dayMs)
  t.same(env.authority.registeredClient('gf')?.publicJwks.map(jwk => jwk.kid), ['old-key', 'new-key'])
  t.match(env.selvbetjening.secrets('gf'), [{ kid: 'old-key', origin: 'Gui' }, { kid: 'new-key', origin: 'Api', jwkThumbprint: newKey.jkt, expiration: body.expiration }])
  t.ok(await env.token(selvbetjeningClientScope, newKey), 'the new key gets a token')
  t.ok(await env.token(), 'the old key still does')

  env.selvbetjening.retireKey('gf', 'old-key')

  const refused = await fetchToken(env.authority, { clientId: 'gf', clientKey: env.clientKey, dpopKey: env.dpopKey, nowMs: Date.now, scope: selvbetjeningClientScope })
  t.equal(refused.body.error, 'invalid_client', 'the retired key no longer authenticates')
  t.same(env.selvbetjening.secrets('gf').map(secret => secret.kid), ['new-key'])
  t.throws(() => { env.selvbetjening.retireKey('gf', 'new-key') }, TypeError, 'the last key cannot be retired')
})

t.test('POST accepts the JWK as a JSON string literal; without kid the thumbprint is the kid', async t => {
  const env = await setup(t)
  const token = await env.token()
  const jwk = publicOnly(await privateJwk('P-256'))

  const response = await env.send('POST', token, { body: JSON.stringify(JSON.stringify(jwk)) })

  t.equal(response.status, 200)
  t.equal(env.selvbetjening.secrets('gf').at(-1)?.kid, await calculateJwkThumbprint(jwk))
})

t.test('POST refuses private keys, weak keys, non-JWKs, duplicates and other media types with problem details', async t => {
  const env = await setup(t)
  const token = await env.token()
  const existing = { ...env.clientKey.publicJwk, kid: 'other-kid' }

  const cases: Array<[string, string, number, RegExp, string?]> = [
    ['private key', JSON.stringify(await privateJwk('RSA-2048')), 400, /private key members/],
    ['RSA 1024', JSON.stringify(publicOnly(await privateJwk('RSA-1024'))), 400, /1024 bits; at least 2048/],
    ['not JSON', '{"kty":', 400, /not JSON/],
    ['a list', '[]', 400, /not a JWK object/],
    ['oct key', JSON.stringify({ kty: 'oct', kid: 'x' }), 400, /kty must be RSA or EC/],
    ['EC without y', JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'abc' }), 400, /needs crv/],
    ['garbage modulus', JSON.stringify({ kty: 'RSA', n: 'AAAA', e: 'AQAB' }), 400, /./],
    ['same key again', JSON.stringify(existing), 409, /already registered/],
    ['form body', 'kty=RSA', 415, /send the public JWK as application\/json/, 'application/x-www-form-urlencoded']
  ]
  for (const [name, body, status, detail, contentType] of cases) {
    const response = await env.send('POST', token, { body, ...(contentType === undefined ? {} : { contentType }) })
    t.equal(response.status, status, name)
    t.match(response.headers.get('content-type'), /^application\/problem\+json/, name)
    t.match(await response.json(), { status, title: String, detail }, name)
  }
  t.equal(env.authority.registeredClient('gf')?.publicJwks.length, 1, 'nothing was registered')
})

t.test('a multi-tenant client asks for a Selvbetjening token without naming an organisation', async t => {
  const env = await setup(t)
  const supplierKey = await createTestKey('PS256')
  env.authority.registerClient({ clientId: 'supplier', publicJwks: [supplierKey.publicJwk], scopes: [personScope, selvbetjeningClientScope], multiTenant: true, organization: '999977773' })
  const ask = async (scope: string): Promise<Record<string, unknown>> => (await fetchToken(env.authority, { clientId: 'supplier', clientKey: supplierKey, dpopKey: env.dpopKey, nowMs: Date.now, scope })).body

  t.type((await ask(selvbetjeningClientScope)).access_token, 'string')
  t.match(await ask(personScope), { error: 'invalid_request', error_description: /multi-tenant client must send assertion_details/ }, 'other APIs still need the parent')
})

t.test('setMode: unavailable and malformed answers, after authentication', async t => {
  const env = await setup(t)
  const token = await env.token()

  env.selvbetjening.setMode('unavailable')
  const unavailable = await env.send('GET', token)
  env.selvbetjening.setMode('malformed')
  const malformed = await env.send('GET', token)

  t.equal(unavailable.status, 503)
  t.match(await unavailable.json(), { status: 503, title: 'Service Unavailable' })
  t.equal(malformed.status, 200)
  t.notOk(Array.isArray(await malformed.json()))
})
