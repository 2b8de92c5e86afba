// The demo Persontjenesten checks DPoP-bound tokens and proofs like a real resource server and serves v3 shapes.

import t, { type Test } from 'tap'
import { createManualClock } from '../../src/clock.ts'
import { startFakeAuthority, type RegisteredClient } from '../../src/demo/fake-authority.ts'
import { startFakePersontjenesten, type FakePersontjenestenOptions } from '../../src/demo/fake-persontjenesten.ts'
import { demoNin, syntheticPersons } from '../../src/demo/synthetic-persons.ts'
import { createProof, createTestKey, fetchAccessToken, type ProofOptions, type TestKey } from './dpop-test-kit.ts'

const restricted = 'nhn:hgd-persontjenesten-api/restricted-access'
const full = 'nhn:hgd-persontjenesten-api/full-access'
const base = '/api/v3/restricted-access'

interface CallOptions {
  readonly method?: string
  readonly token?: string
  readonly scheme?: string
  readonly body?: string
  readonly contentType?: string
  readonly proof?: Partial<ProofOptions>
  readonly proofKey?: TestKey
  readonly omitProof?: boolean
}

async function setup (t: Test, options: Partial<FakePersontjenestenOptions> = {}, client: Partial<RegisteredClient> = {}) {
  const clock = createManualClock(Date.UTC(2026, 0, 15, 12, 0, 0))
  const clientKey = await createTestKey('PS256')
  const dpopKey = await createTestKey('ES256')
  const authority = await startFakeAuthority({ clock, requireNonce: false })
  authority.registerClient({ clientId: 'client-a', publicJwks: [clientKey.publicJwk], scopes: [restricted, full], organization: '999977774', ...client })
  const api = await startFakePersontjenesten({ issuer: authority.issuer, jwksUri: authority.jwksUri, clock, ...options })
  t.teardown(async () => { await Promise.all([api.close(), authority.close()]) })
  const getToken = async (scope = restricted) => await fetchAccessToken(authority, { clientId: 'client-a', clientKey, dpopKey, nowMs: () => clock.nowMs(), scope })
  const token = await getToken()

  /** Calls the API the way the broker does: DPoP token and a fresh proof for exactly this method and URL. */
  const call = async (pathAndQuery: string, callOptions: CallOptions = {}) => {
    const method = callOptions.method ?? 'GET'
    const accessToken = callOptions.token ?? token
    const headers: Record<string, string> = { authorization: `${callOptions.scheme ?? 'DPoP'} ${accessToken}` }
    if (callOptions.omitProof !== true) {
      headers.dpop = await createProof(callOptions.proofKey ?? dpopKey, {
        htm: method, htu: api.origin + pathAndQuery.split('?')[0], nowMs: clock.nowMs(), accessToken, ...callOptions.proof
      })
    }
    if (callOptions.contentType !== undefined) headers['content-type'] = callOptions.contentType
    const response = await fetch(api.origin + pathAndQuery, { method, headers, ...(callOptions.body === undefined ? {} : { body: callOptions.body }) })
    return { status: response.status, headers: response.headers, text: await response.text() }
  }
  return { clock, authority, api, clientKey, dpopKey, token, getToken, call }
}

const form = 'application/x-www-form-urlencoded'

t.test('GET /ping answers Pong without authentication', async t => {
  const { api } = await setup(t)

  const response = await fetch(`${api.origin}/ping`)

  t.equal(response.status, 200)
  t.equal(await response.text(), 'Pong')
  t.equal(api.received.at(-1)?.outcome, 'ok')
})

t.test('a valid DPoP call gets the latest event as JSON and is recorded with its claims', async t => {
  const { api, call } = await setup(t)

  const response = await call(`${base}/event/latest`)

  t.equal(response.status, 200)
  t.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
  t.match(JSON.parse(response.text), { sequenceNumber: /^\d+$/, personId: /^[0-9a-f]{64}$/, eventType: 'ChangeInAddressProtection' })
  const [received] = api.received
  t.match(received, { method: 'GET', path: `${base}/event/latest`, query: '', outcome: 'ok', body: '' })
  t.match(received?.tokenClaims, { client_id: 'client-a' })
  t.match(received?.proofClaims, { htm: 'GET', htu: `${api.origin}${base}/event/latest` })
})

t.test('get-by-nin takes the NIN from the form body and returns only the requested parts', async t => {
  const { api, call } = await setup(t)
  const body = `nin=${demoNin}`

  const response = await call(`${base}/person/get-by-nin?informationParts=Name&informationParts=Birth`, { method: 'POST', body, contentType: form })
  const unknown = await call(`${base}/person/get-by-nin?informationParts=Name`, { method: 'POST', body: 'nin=01010150000', contentType: form })

  t.equal(response.status, 200)
  const person = JSON.parse(response.text) as Record<string, unknown>
  t.same(Object.keys(person).sort(), ['birth', 'id', 'name', 'sequenceNumber'])
  t.match(person, { name: [{ givenName: 'Kari', familyName: 'Fjellheim', isValid: true }], birth: [{ birthDate: '1985-03-12T00:00:00+00:00' }] })
  t.equal(api.received[0]?.body, body)
  t.equal(api.received[0]?.query, 'informationParts=Name&informationParts=Birth')
  t.equal(api.received[0]?.contentType, form)
  t.equal(unknown.status, 404)
  t.match(unknown.headers.get('content-type'), /^application\/problem\+json/)
  t.match(JSON.parse(unknown.text), { status: 404, detail: 'No person found' })
})

t.test('person by id: comma-separated parts, missing parts → 400, unknown id → 404', async t => {
  const { call } = await setup(t)
  const id = syntheticPersons[1]?.id ?? ''

  const ok = await call(`${base}/person/${id}?informationParts=Gender,Status`)
  const missing = await call(`${base}/person/${id}`)
  const badPart = await call(`${base}/person/${id}?informationParts=Shoe`)
  const unknown = await call(`${base}/person/${'0'.repeat(64)}?informationParts=Name`)

  t.equal(ok.status, 200)
  t.match(JSON.parse(ok.text), { id, gender: [{ gender: 'Male' }], status: [{ status: 'Resident' }] })
  t.equal(missing.status, 400)
  t.match(missing.headers.get('content-type'), /^application\/problem\+json/)
  t.match(JSON.parse(missing.text), { status: 400, detail: /informationParts/ })
  t.equal(badPart.status, 400)
  t.equal(unknown.status, 404)
})

t.test('bulk-by-nin accepts repeated and comma-separated nins, at most 100', async t => {
  const { call } = await setup(t)
  const [first, second, third] = syntheticPersons

  const ok = await call(`${base}/person/bulk-by-nin?informationParts=Name`, { method: 'POST', contentType: form, body: `nins=${first?.nin},${second?.nin}&nins=${third?.nin}&nins=01010150000` })
  const tooMany = await call(`${base}/person/bulk-by-nin?informationParts=Name`, { method: 'POST', contentType: form, body: Array.from({ length: 101 }, () => `nins=${demoNin}`).join('&') })
  const json = await call(`${base}/person/bulk-by-nin?informationParts=Name`, { method: 'POST', contentType: 'application/json', body: '{"nins":[]}' })

  t.equal(ok.status, 200)
  t.same((JSON.parse(ok.text) as Array<{ id: string }>).map(p => p.id), [first?.id, second?.id, third?.id])
  t.equal(tooMany.status, 400)
  t.equal(json.status, 415)
})

t.test('event search starts at sequenceNumber and honours maxLimit', async t => {
  const { call } = await setup(t)

  const response = await call(`${base}/event?sequenceNumber=3&maxLimit=2`)
  const bad = await call(`${base}/event?sequenceNumber=abc`)

  t.equal(response.status, 200)
  t.same((JSON.parse(response.text) as { results: Array<{ sequenceNumber: string }> }).results.map(e => e.sequenceNumber), ['3', '4'])
  t.equal(bad.status, 400)
})

t.test('restricted-access withholds protected addresses and KRR data; full-access shows them', async t => {
  const { call, getToken } = await setup(t)
  const protectedPerson = syntheticPersons.find(p => p.protectionLevel === 'StrictlyConfidential')
  const path = `/person/${protectedPerson?.id}?informationParts=ResidentialAddress&informationParts=CommonContactRegisterInformation`

  const restrictedView = JSON.parse((await call(`${base}${path}`)).text) as Record<string, unknown>
  const fullView = JSON.parse((await call(`/api/v3/full-access${path}`, { token: await getToken(full) })).text) as Record<string, unknown>

  t.same(restrictedView.residentialAddress, [])
  t.equal(restrictedView.commonContactRegisterInformation, null)
  t.match(fullView.residentialAddress, [{ addressConfidentiality: 'StrictlyConfidential', streetAddress: { city: { postalCode: '5003' } } }])
  t.match(fullView.commonContactRegisterInformation, { reservation: 'No' })
})

t.test('rejects a bearer token and a missing Authorization header with 401', async t => {
  const { api, call } = await setup(t)

  const bearer = await call(`${base}/event/latest`, { scheme: 'Bearer', omitProof: true })
  const none = await fetch(`${api.origin}${base}/event/latest`)

  t.equal(bearer.status, 401)
  t.match(bearer.headers.get('www-authenticate'), /^DPoP error="invalid_token"/)
  t.equal(bearer.text, '')
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^DPoP algs="/)
  t.match(api.received.map(r => r.outcome), [/^invalid_token:Bearer scheme/, /^invalid_token:missing authorization/])
})

t.test('rejects proofs that do not match the request', async t => {
  const { api, call, dpopKey } = await setup(t)
  const path = `${base}/event/latest`
  const cases: Array<[string, CallOptions, RegExp]> = [
    ['no proof', { omitProof: true }, /invalid_dpop_proof:DPoP proof missing/],
    ['wrong htu', { proof: { htu: `${api.origin}${base}/event` } }, /invalid_dpop_proof:htu mismatch/],
    ['htu with the query', { proof: { htu: `${api.origin}${path}?x=1` } }, /invalid_dpop_proof:htu carries a query/],
    ['wrong htm', { proof: { htm: 'POST' } }, /invalid_dpop_proof:htm mismatch/],
    ['iat 6 s old', { proof: { iatOffsetSeconds: -6 } }, /invalid_dpop_proof:iat too old/],
    ['iat 6 s ahead', { proof: { iatOffsetSeconds: 6 } }, /invalid_dpop_proof:iat in the future/],
    ['typ jwt', { proof: { typ: 'JWT' } }, /invalid_dpop_proof:proof did not verify/],
    ['private jwk', { proof: { embeddedJwk: dpopKey.privateJwk } }, /invalid_dpop_proof:jwk header holds a private key/],
    ['wrong ath', { proof: { ath: 'x'.repeat(43) } }, /invalid_token:ath mismatch/],
    ['another key than cnf.jkt', { proofKey: await createTestKey('ES256') }, /invalid_token:proof key does not match cnf\.jkt/]
  ]
  for (const [name, options, outcome] of cases) {
    const response = await call(path, options)
    t.equal(response.status, 401, name)
    t.match(response.headers.get('www-authenticate'), /^DPoP error="(invalid_token|invalid_dpop_proof)"/, name)
    t.match(api.received.at(-1)?.outcome, outcome, name)
  }
})

t.test('rejects a replayed proof jti', async t => {
  const { api, call } = await setup(t)

  const first = await call(`${base}/event/latest`, { proof: { jti: 'same-jti' } })
  const second = await call(`${base}/event/latest`, { proof: { jti: 'same-jti' } })

  t.equal(first.status, 200)
  t.equal(second.status, 401)
  t.equal(api.received.at(-1)?.outcome, 'invalid_dpop_proof:jti replayed')
})

t.test('rejects an expired token and one from another issuer', async t => {
  const { api, call, clock } = await setup(t)
  const otherAuthority = await startFakeAuthority({ clock, requireNonce: false })
  t.teardown(async () => { await otherAuthority.close() })
  const otherClientKey = await createTestKey('ES256')
  otherAuthority.registerClient({ clientId: 'client-a', publicJwks: [otherClientKey.publicJwk], scopes: [restricted], organization: '999977774' })
  const foreignToken = await fetchAccessToken(otherAuthority, { clientId: 'client-a', clientKey: otherClientKey, dpopKey: await createTestKey(), nowMs: () => clock.nowMs() })

  const foreign = await call(`${base}/event/latest`, { token: foreignToken })
  clock.advanceMs(301_000)
  const expired = await call(`${base}/event/latest`)

  t.equal(foreign.status, 401)
  t.match(api.received.at(-2)?.outcome, /^invalid_token:token rejected/)
  t.equal(expired.status, 401)
  t.match(api.received.at(-1)?.outcome, /^invalid_token:token rejected \(ERR_JWT_EXPIRED/)
})

t.test('a token without orgnr_parent gets 403 with an empty body', async t => {
  const { api, authority, call, clientKey, dpopKey, clock } = await setup(t)
  authority.registerClient({ clientId: 'no-org', publicJwks: [clientKey.publicJwk], scopes: [restricted] })
  const token = await fetchAccessToken(authority, { clientId: 'no-org', clientKey, dpopKey, nowMs: () => clock.nowMs() })

  const withoutOrg = await call(`${base}/event/latest`, { token })

  t.equal(withoutOrg.status, 403)
  t.equal(withoutOrg.text, '')
  t.equal(api.received.at(-1)?.outcome, 'forbidden:orgnr_parent missing')
})

t.test('the full-access tree needs the full-access scope', async t => {
  const { api, call } = await setup(t)

  const response = await call('/api/v3/full-access/event/latest')

  t.equal(response.status, 403)
  t.equal(response.text, '')
  t.equal(api.received.at(-1)?.outcome, `insufficient_scope:${full} missing`)
})

t.test('with requireNonce a proof without the current nonce gets use_dpop_nonce, and the retry succeeds', async t => {
  const { api, call } = await setup(t, { requireNonce: true })

  const challenge = await call(`${base}/event/latest`)
  const nonce = challenge.headers.get('dpop-nonce') ?? ''
  const retry = await call(`${base}/event/latest`, { proof: { nonce } })
  api.rotateNonce()
  const stale = await call(`${base}/event/latest`, { proof: { nonce } })

  t.equal(challenge.status, 401)
  t.match(challenge.headers.get('www-authenticate'), /^DPoP error="use_dpop_nonce"/)
  t.ok(nonce.length > 0)
  t.equal(retry.status, 200)
  t.equal(stale.status, 401)
  t.not(stale.headers.get('dpop-nonce'), nonce)
  t.same(api.received.map(r => r.outcome), ['use_dpop_nonce', 'ok', 'use_dpop_nonce'])
})

t.test('setResponseDelayMs holds the response back; the request is still recorded', async t => {
  const { api, token, dpopKey, clock } = await setup(t)
  api.setResponseDelayMs(3000)
  const url = `${api.origin}${base}/event/latest`
  const proof = await createProof(dpopKey, { htm: 'GET', htu: url, nowMs: clock.nowMs(), accessToken: token })

  const controller = new AbortController()
  const pending = fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: proof }, signal: controller.signal }).catch((error: unknown) => error)
  // Gives up once the request is recorded (however long the token check took), while the answer is still held back.
  for (let i = 0; i < 500 && api.received.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  controller.abort()
  const result = await pending

  t.type(result, Error, 'no answer came within the delay')
  t.equal(api.received.length, 1)
  t.equal(api.received[0]?.outcome, 'ok')
})
