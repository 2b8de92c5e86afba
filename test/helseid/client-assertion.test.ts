import t from 'tap'
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose'
import { createClientAssertion, toAssertionDetails } from '../../src/helseid/client-assertion.ts'
import { createDpopKey, accessTokenHash } from '../../src/helseid/dpop-key.ts'
import { parseClientKey } from '../../src/keys/load-client-key.ts'
import { EmbeddedJWK } from 'jose'

t.test('the client assertion carries exactly what HelseID requires', async t => {
  const { privateKey, publicKey } = await generateKeyPair('PS256', { modulusLength: 2048, extractable: true })
  const key = await parseClientKey(await exportJWK(privateKey), '(test)')
  const nowMs = Date.now()

  const assertion = await createClientAssertion({ clientId: 'client-1', issuer: 'https://helseid-sts.test.nhn.no', key, organization: { parent: '999977774' }, nowMs })
  const second = await createClientAssertion({ clientId: 'client-1', issuer: 'https://helseid-sts.test.nhn.no', key, organization: {}, nowMs })

  const { payload, protectedHeader } = await jwtVerify(assertion, publicKey, { typ: 'client-authentication+jwt', audience: 'https://helseid-sts.test.nhn.no', issuer: 'client-1', subject: 'client-1' })
  t.equal(protectedHeader.alg, 'PS256')
  t.equal(protectedHeader.kid, key.kid)
  t.equal(payload.iat, payload.nbf)
  t.equal(Number(payload.exp) - Number(payload.iat), 10)
  t.match(payload.jti, /^[0-9a-f]{32}$/)
  t.match(payload.assertion_details, { practitioner_role: { organization: { identifier: { value: 'NO:ORGNR:999977774' } } } })
  const secondPayload = (await jwtVerify(second, publicKey)).payload
  t.not(secondPayload.jti, payload.jti, 'fresh jti every time')
  t.equal(secondPayload.assertion_details, undefined, 'no details without organisation numbers')
})

t.test('assertion_details: multi-tenant parent[:child], single-tenant child, or none', async t => {
  t.same(toAssertionDetails({}), undefined)
  t.match(toAssertionDetails({ parent: '999977774', child: '999977775' }), {
    type: 'helseid_authorization',
    practitioner_role: { organization: { identifier: { system: 'urn:oid:1.0.6523', type: 'ENH', value: 'NO:ORGNR:999977774:999977775' } } }
  })
  t.match(toAssertionDetails({ child: '999977776' }), {
    practitioner_role: { organization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.101', type: 'ENH', value: '999977776' } } }
  })
})

t.test('DPoP proofs verify with their embedded public key and carry htm, htu, iat, jti, ath, nonce', async t => {
  const dpopKey = await createDpopKey()
  const nowMs = Date.now()

  const proof = dpopKey.proof({ htm: 'GET', htu: 'https://api.example.test/x', ath: accessTokenHash('token'), nonce: 'n-1' }, nowMs)
  const other = dpopKey.proof({ htm: 'GET', htu: 'https://api.example.test/x' }, nowMs)

  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })
  t.equal(protectedHeader.alg, 'ES256')
  t.same(Object.keys(protectedHeader.jwk ?? {}).sort(), ['crv', 'kty', 'x', 'y'], 'public members only')
  t.match(payload, { htm: 'GET', htu: 'https://api.example.test/x', iat: Math.floor(nowMs / 1000), nonce: 'n-1' })
  t.equal(payload.ath, 'PEaenWxYddN6Q_NT1PiOYfz4EsZu7jRXRlpAsNpBU-A')
  t.not(decodeProtectedHeader(other).jwk, undefined)
  t.not((await jwtVerify(other, EmbeddedJWK)).payload.jti, payload.jti)
})

t.test('a proof signed on the thread pool is the same kind of proof as one signed at once', async t => {
  const dpopKey = await createDpopKey()
  const nowMs = Date.now()
  const input = { htm: 'POST', htu: 'https://api.example.test/person/get-by-nin', ath: accessTokenHash('token'), nonce: 'n-2' }

  const proofs = await Promise.all(Array.from({ length: 20 }, async () => await dpopKey.signProof(input, nowMs)))
  const atOnce = dpopKey.proof(input, nowMs)

  const verified = await Promise.all([...proofs, atOnce].map(async proof => await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })))
  for (const { payload, protectedHeader } of verified) {
    t.equal(protectedHeader.alg, 'ES256')
    t.same(protectedHeader.jwk, dpopKey.publicJwk, 'the same key signs either way')
    t.match(payload, { htm: 'POST', htu: input.htu, ath: input.ath, nonce: 'n-2', iat: Math.floor(nowMs / 1000) })
  }
  t.equal(new Set(verified.map(({ payload }) => payload.jti)).size, 21, 'every proof has its own jti')
})
