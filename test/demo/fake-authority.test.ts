// The demo authority verifies client assertions, DPoP proofs, nonces, scopes and organisation details like HelseID.

import t, { type Test } from 'tap'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { createManualClock } from '../../src/clock.ts'
import { startFakeAuthority, type FakeAuthorityOptions, type RegisteredClient } from '../../src/demo/fake-authority.ts'
import { createAssertion, createProof, createTestKey, fetchAccessToken, fetchToken, postToken, tokenForm, type TestKey } from './dpop-test-kit.ts'

const restricted = 'nhn:hgd-persontjenesten-api/restricted-access'
const full = 'nhn:hgd-persontjenesten-api/full-access'

async function setup (t: Test, options: FakeAuthorityOptions = {}, client: Partial<RegisteredClient> = {}) {
  const clock = createManualClock(Date.UTC(2026, 0, 15, 12, 0, 0))
  const clientKey = await createTestKey('PS256')
  const dpopKey = await createTestKey('ES256')
  const authority = await startFakeAuthority({ clock, ...options })
  t.teardown(async () => { await authority.close() })
  const registered: RegisteredClient = { clientId: 'client-a', publicJwks: [clientKey.publicJwk], scopes: [restricted, full], organization: '999977774', clientName: 'Test EPJ', ...client }
  authority.registerClient(registered)
  const assertion = async (overrides: Partial<Parameters<typeof createAssertion>[0]> = {}) =>
    await createAssertion({ clientId: 'client-a', audience: authority.issuer, nowMs: clock.nowMs(), key: clientKey, ...overrides })
  const proof = async (overrides: Partial<Parameters<typeof createProof>[1]> = {}, key: TestKey = dpopKey) =>
    await createProof(key, { htm: 'POST', htu: authority.tokenEndpoint, nowMs: clock.nowMs(), ...overrides })
  /** A proof carrying the authority's current nonce, learned the way a client learns it. */
  const nonceProof = async (overrides: Partial<Parameters<typeof createProof>[1]> = {}) => {
    const first = await postToken(authority, tokenForm('client-a', await assertion(), restricted), await proof())
    return await proof({ nonce: first.headers.get('dpop-nonce') ?? '', ...overrides })
  }
  const tokenOptions = { clientId: 'client-a', clientKey, dpopKey, nowMs: () => clock.nowMs() }
  return { clock, clientKey, dpopKey, authority, assertion, proof, nonceProof, tokenOptions }
}

t.test('discovery and JWKS describe a private_key_jwt + DPoP authority', async t => {
  const { authority } = await setup(t)

  const discovery = await (await fetch(`${authority.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  const jwks = await (await fetch(authority.jwksUri)).json() as { keys: Array<Record<string, unknown>> }

  t.match(authority.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(discovery.issuer, authority.issuer)
  t.equal(discovery.token_endpoint, authority.tokenEndpoint)
  t.equal(discovery.jwks_uri, authority.jwksUri)
  t.same(discovery.token_endpoint_auth_methods_supported, ['private_key_jwt'])
  t.same(discovery.grant_types_supported, ['client_credentials'])
  t.ok((discovery.dpop_signing_alg_values_supported as string[]).includes('ES256'))
  t.same(discovery.scopes_supported, [restricted, full])
  t.equal(jwks.keys.length, 1)
  t.equal(jwks.keys[0]?.d, undefined)
})

t.test('issues a DPoP-bound token after the nonce handshake', async t => {
  const { authority, dpopKey, assertion, proof, clock } = await setup(t)

  const first = await postToken(authority, tokenForm('client-a', await assertion(), restricted), await proof())
  const nonce = first.headers.get('dpop-nonce') ?? ''
  const second = await postToken(authority, tokenForm('client-a', await assertion(), restricted), await proof({ nonce }))

  t.equal(first.status, 400)
  t.equal(first.body.error, 'use_dpop_nonce')
  t.match(nonce, /^[A-Za-z0-9_-]{20,}$/)
  t.equal(second.status, 200)
  t.equal(second.headers.get('cache-control'), 'no-store')
  t.match(second.body, { token_type: 'DPoP', expires_in: 300, scope: restricted })
  const token = String(second.body.access_token)
  t.same(authority.issuedTokens, [token])
  t.same(authority.tokenRequests.map(r => [r.outcome, typeof r.dpopNonce]), [['use_dpop_nonce', 'undefined'], ['issued', 'string']])
  t.equal(authority.tokenRequests[1]?.dpopJkt, dpopKey.jkt)
  t.equal(decodeProtectedHeader(token).typ, 'at+jwt')
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(authority.jwksUri)), {
    issuer: authority.issuer, audience: 'nhn:hgd-persontjenesten-api', currentDate: new Date(clock.nowMs())
  })
  t.match(payload, {
    client_id: 'client-a',
    scope: [restricted],
    cnf: { jkt: dpopKey.jkt },
    'helseid://claims/client/claims/orgnr_parent': '999977774',
    'helseid://claims/client/claims/client_tenancy': 'single-tenant',
    'helseid://claims/client/client_name': 'Test EPJ'
  })
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300)
  t.equal(payload.iat, Math.floor(clock.nowMs() / 1000))
  t.equal(payload['helseid://claims/client/claims/orgnr_child'], undefined)
})

t.test('accepts the same assertion on the nonce retry, as HelseID does, but not after a token was issued', async t => {
  const { authority, assertion, proof } = await setup(t)
  const sameAssertion = await assertion()

  const first = await postToken(authority, tokenForm('client-a', sameAssertion, restricted), await proof())
  const second = await postToken(authority, tokenForm('client-a', sameAssertion, restricted), await proof({ nonce: first.headers.get('dpop-nonce') ?? '' }))
  const replay = await postToken(authority, tokenForm('client-a', sameAssertion, restricted), await proof({ nonce: first.headers.get('dpop-nonce') ?? '' }))

  t.equal(second.status, 200)
  t.equal(replay.status, 401)
  t.equal(replay.body.error, 'invalid_client')
  t.match(replay.body.error_description, /jti replayed/)
})

t.test('without requireNonce a first request gets a token; missing scope means all the client scopes', async t => {
  const { authority, tokenOptions } = await setup(t, { requireNonce: false, tokenLifetimeSeconds: 60 })

  const response = await fetchToken(authority, tokenOptions)

  t.equal(response.status, 200)
  t.equal(response.body.expires_in, 60)
  t.equal(response.body.scope, `${restricted} ${full}`)
  t.same(authority.tokenRequests.map(r => r.outcome), ['issued'])
})

t.test('rejects client authentication problems with 401 invalid_client', async t => {
  const { authority, assertion, nonceProof } = await setup(t)
  const otherKey = await createTestKey('PS256')
  const cases: Array<[string, () => Promise<Record<string, string>>, RegExp]> = [
    ['typ JWT', async () => tokenForm('client-a', await assertion({ typ: 'JWT' })), /typ/],
    ['aud = token endpoint', async () => tokenForm('client-a', await assertion({ audience: authority.tokenEndpoint })), /aud/],
    ['aud with trailing slash', async () => tokenForm('client-a', await assertion({ audience: `${authority.issuer}/` })), /aud/],
    ['signed by an unregistered key', async () => tokenForm('client-a', await assertion({ key: otherKey })), /signature/],
    ['iss differs from client_id', async () => tokenForm('client-a', await assertion({ iss: 'client-b' })), /iss/],
    ['sub differs from client_id', async () => tokenForm('client-a', await assertion({ sub: 'client-b' })), /sub/],
    ['lifetime over 60 s', async () => tokenForm('client-a', await assertion({ lifetimeSeconds: 61 })), /lifetime/],
    ['issued in the future', async () => tokenForm('client-a', await assertion({ iatOffsetSeconds: 30 })), /nbf|iat/],
    ['expired', async () => tokenForm('client-a', await assertion({ iatOffsetSeconds: -40 })), /exp/],
    ['unknown client', async () => tokenForm('client-z', await assertion({ iss: 'client-z', sub: 'client-z' })), /unknown client/],
    ['wrong assertion type', async () => ({ ...tokenForm('client-a', await assertion()), client_assertion_type: 'urn:x' }), /private_key_jwt/]
  ]
  for (const [name, form, description] of cases) {
    const response = await postToken(authority, await form(), await nonceProof())
    t.equal(response.status, 401, name)
    t.equal(response.body.error, 'invalid_client', name)
    t.match(response.body.error_description, description, name)
  }
  t.equal(authority.issuedTokens.length, 0)
})

t.test('rejects a replayed client assertion jti', async t => {
  const { authority, assertion, nonceProof } = await setup(t)
  const jti = 'a-jti-used-twice'

  const first = await postToken(authority, tokenForm('client-a', await assertion({ jti }), restricted), await nonceProof())
  const second = await postToken(authority, tokenForm('client-a', await assertion({ jti }), restricted), await nonceProof())

  t.equal(first.status, 200)
  t.equal(second.status, 401)
  t.equal(second.body.error, 'invalid_client')
  t.equal(authority.tokenRequests.at(-1)?.outcome, 'invalid_client')
})

t.test('accepts any of several registered keys (rotation), with or without kid', async t => {
  const { authority, assertion, nonceProof, clientKey } = await setup(t)
  const newKey = await createTestKey('PS256')
  authority.registerClient({ clientId: 'client-a', publicJwks: [clientKey.publicJwk, { ...newKey.publicJwk, kid: 'new' }], scopes: [restricted], organization: '999977774' })

  const withoutKid = await postToken(authority, tokenForm('client-a', await assertion({ key: newKey })), await nonceProof())
  const withKid = await postToken(authority, tokenForm('client-a', await assertion({ key: newKey, kid: 'new' })), await nonceProof())
  const oldKey = await postToken(authority, tokenForm('client-a', await assertion()), await nonceProof())

  t.same([withoutKid.status, withKid.status, oldKey.status], [200, 200, 200])
  t.ok(authority.tokenRequests.some(r => r.assertionKid === 'new' && r.outcome === 'issued'))
})

t.test('rejects bad DPoP proofs with 400 invalid_dpop_proof', async t => {
  const { authority, assertion, proof, dpopKey } = await setup(t)
  const cases: Array<[string, () => Promise<string | undefined>, RegExp]> = [
    ['no proof', async () => undefined, /required/],
    ['typ JWT', async () => await proof({ typ: 'JWT' }), /typ/],
    ['htm GET', async () => await proof({ htm: 'GET' }), /htm/],
    ['htu of another endpoint', async () => await proof({ htu: `${authority.issuer}/connect/other` }), /htu/],
    ['htu with a query', async () => await proof({ htu: `${authority.tokenEndpoint}?x=1` }), /query/],
    ['iat two minutes old', async () => await proof({ iatOffsetSeconds: -120 }), /iat/],
    ['private key embedded', async () => await proof({ embeddedJwk: dpopKey.privateJwk }), /private/]
  ]
  for (const [name, makeProof, description] of cases) {
    const response = await postToken(authority, tokenForm('client-a', await assertion(), restricted), await makeProof())
    t.equal(response.status, 400, name)
    t.equal(response.body.error, 'invalid_dpop_proof', name)
    t.match(response.body.error_description, description, name)
  }
  t.equal(authority.issuedTokens.length, 0)
})

t.test('rejects a replayed proof jti and a stale nonce', async t => {
  const { authority, assertion, nonceProof, proof } = await setup(t)
  const reused = await nonceProof()

  const first = await postToken(authority, tokenForm('client-a', await assertion(), restricted), reused)
  const replayed = await postToken(authority, tokenForm('client-a', await assertion(), restricted), reused)
  const staleNonce = String((JSON.parse(Buffer.from(reused.split('.')[1] ?? '', 'base64url').toString()) as { nonce: string }).nonce)
  authority.rotateNonce()
  const afterRotation = await postToken(authority, tokenForm('client-a', await assertion(), restricted), await proof({ nonce: staleNonce }))

  t.equal(first.status, 200)
  t.equal(replayed.status, 400)
  t.equal(replayed.body.error, 'invalid_dpop_proof')
  t.equal(afterRotation.status, 400)
  t.equal(afterRotation.body.error, 'use_dpop_nonce')
  t.not(afterRotation.headers.get('dpop-nonce'), staleNonce)
})

t.test('rejects scopes the client does not have with invalid_scope', async t => {
  const { authority, assertion, nonceProof } = await setup(t, {}, { scopes: [restricted] })

  const response = await postToken(authority, tokenForm('client-a', await assertion(), `${restricted} ${full}`), await nonceProof())

  t.equal(response.status, 400)
  t.equal(response.body.error, 'invalid_scope')
  t.equal(authority.tokenRequests.at(-1)?.outcome, 'invalid_scope')
})

t.test('multi-tenant clients must name the parent organisation', async t => {
  const { authority, tokenOptions } = await setup(t, {}, { multiTenant: true, organization: '999977773' })
  const details = (value: string, system = 'urn:oid:1.0.6523') => ({
    type: 'helseid_authorization', practitioner_role: { organization: { identifier: { system, type: 'ENH', value } } }
  })

  const missing = await fetchToken(authority, { ...tokenOptions, scope: restricted })
  const malformed = await fetchToken(authority, { ...tokenOptions, scope: restricted, details: details('NO:ORGNR:12345') })
  const wrongSystem = await fetchToken(authority, { ...tokenOptions, scope: restricted, details: details('NO:ORGNR:999977774', 'urn:oid:2.16.578.1.12.4.1.4.101') })
  const parentAndChild = await fetchAccessToken(authority, { ...tokenOptions, scope: restricted, details: details('NO:ORGNR:999977774:999977775') })
  const trailingColon = await fetchAccessToken(authority, { ...tokenOptions, scope: restricted, details: [{ type: 'nhn:sfm:journal-id', value: {} }, details('NO:ORGNR:999977774:')] })

  t.equal(missing.status, 400)
  t.equal(missing.body.error, 'invalid_request')
  t.match(missing.body.error_description, /^HID-1007/)
  t.equal(malformed.body.error, 'invalid_request')
  t.equal(wrongSystem.body.error, 'invalid_request')
  t.match(JSON.parse(Buffer.from(parentAndChild.split('.')[1] ?? '', 'base64url').toString()), {
    'helseid://claims/client/claims/orgnr_parent': '999977774',
    'helseid://claims/client/claims/orgnr_child': '999977775',
    'helseid://claims/client/claims/orgnr_supplier': '999977773',
    'helseid://claims/client/claims/client_tenancy': 'multi-tenant'
  })
  const trailing = JSON.parse(Buffer.from(trailingColon.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>
  t.equal(trailing['helseid://claims/client/claims/orgnr_parent'], '999977774')
  t.equal(trailing['helseid://claims/client/claims/orgnr_child'], undefined)
  t.match(authority.tokenRequests.find(r => r.outcome === 'issued')?.assertionDetails, { type: 'helseid_authorization' })
})

t.test('single-tenant clients may name a child unit', async t => {
  const { authority, tokenOptions } = await setup(t)
  const child = { type: 'helseid_authorization', practitioner_role: { organization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.101', type: 'ENH', value: '999977776' } } } }

  const token = await fetchAccessToken(authority, { ...tokenOptions, scope: restricted, details: child })

  t.match(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()), {
    'helseid://claims/client/claims/orgnr_parent': '999977774',
    'helseid://claims/client/claims/orgnr_child': '999977776'
  })
})

t.test('refuses requests that are not a form-encoded client_credentials grant', async t => {
  const { authority, assertion, nonceProof } = await setup(t)

  const json = await postToken(authority, tokenForm('client-a', await assertion()), await nonceProof(), 'application/json')
  const grant = await postToken(authority, { ...tokenForm('client-a', await assertion()), grant_type: 'password' }, await nonceProof())
  const getResponse = await fetch(authority.tokenEndpoint)

  t.equal(json.status, 400)
  t.equal(json.body.error, 'invalid_request')
  t.equal(grant.body.error, 'unsupported_grant_type')
  t.equal(getResponse.status, 404)
})

t.test('uses the injected clock: an assertion from the real time is expired on a clock two minutes ahead', async t => {
  const { authority, tokenOptions, clock, clientKey } = await setup(t, { requireNonce: false })
  const realNowAssertion = await createAssertion({ clientId: 'client-a', audience: authority.issuer, nowMs: clock.nowMs(), key: clientKey })
  clock.advanceMs(120_000)

  const late = await postToken(authority, tokenForm('client-a', realNowAssertion), await createProof(tokenOptions.dpopKey, { htm: 'POST', htu: authority.tokenEndpoint, nowMs: clock.nowMs() }))

  t.equal(late.status, 401)
  t.match(late.body.error_description, /exp/)
})

t.test('unavailable and slow modes', async t => {
  const { authority, tokenOptions } = await setup(t, { requireNonce: false })

  authority.setTokenEndpointMode('unavailable')
  const unavailable = await fetchToken(authority, tokenOptions)
  authority.setTokenEndpointMode('slow', 150)
  const startedMs = Date.now()
  const slow = await fetchToken(authority, tokenOptions)
  const elapsedMs = Date.now() - startedMs
  authority.setTokenEndpointMode('ok')

  t.equal(unavailable.status, 503)
  t.equal(authority.tokenRequests[0]?.outcome, 'unavailable')
  t.equal(authority.tokenRequests[0]?.clientId, 'client-a')
  t.equal(slow.status, 200)
  t.ok(elapsedMs >= 140, `took ${elapsedMs} ms`)
})

t.test('close does not wait for a slow token request', async t => {
  const { authority, tokenOptions } = await setup(t, { requireNonce: false })
  authority.setTokenEndpointMode('slow', 30_000)
  const pending = fetchToken(authority, tokenOptions).catch((error: unknown) => error)
  await new Promise(resolve => setTimeout(resolve, 50))

  const startedMs = Date.now()
  await authority.close()

  t.ok(Date.now() - startedMs < 5000)
  t.ok(await pending)
})

t.test('registerClient refuses private key material', async t => {
  const { authority, clientKey } = await setup(t)

  t.throws(() => { authority.registerClient({ clientId: 'bad', publicJwks: [clientKey.privateJwk], scopes: [] }) }, TypeError)
  t.throws(() => { authority.registerClient({ clientId: 'bad', publicJwks: [], scopes: [] }) }, TypeError)
})
