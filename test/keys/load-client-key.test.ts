// Tests for loadClientKey/parseClientKey: Selvbetjening downloads, JWK files, HelseID's key rules, and no key material in errors.

import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { calculateJwkThumbprint, compactVerify, CompactSign, importJWK, type JWK } from 'jose'
import { KeyFileError, loadClientKey, parseClientKey } from '../../src/keys/load-client-key.ts'
import { privateJwk, privateValues, protect, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'

const file = '/keys/test.json'

async function refusal (raw: unknown): Promise<KeyFileError> {
  try {
    await parseClientKey(raw, file)
  } catch (error) {
    if (error instanceof KeyFileError) return error
    throw error
  }
  throw new Error('expected a KeyFileError')
}

/** Signs with the private key and verifies with the public JWK; returns the verified header's alg. */
async function signAndVerify (privateKey: CryptoKey, publicJwk: JWK, alg: string): Promise<string | undefined> {
  const jws = await new CompactSign(new TextEncoder().encode('x')).setProtectedHeader({ alg }).sign(privateKey)
  const { protectedHeader } = await compactVerify(jws, await importJWK(publicJwk, alg))
  return protectedHeader.alg
}

t.test('a Selvbetjening download (4096-bit RSA, privateJwk as a string without kid/alg) gives PS256 and a thumbprint kid', async t => {
  const jwk = await privateJwk('RSA-4096')
  const dir = t.testdir({})
  const path = await writeJson(dir, 'HelseId.json', selvbetjeningDownload(jwk, { authority: 'https://helseid-sts.test.nhn.no/connect/token/' }))

  const key = await loadClientKey(path)

  const thumbprint = await calculateJwkThumbprint(publicOnly(jwk))
  t.match(key, { file: path, clientId: '3f2b9c1e-7a4d-4e21-9b6a-0c5d8e7f1a23', authority: 'https://helseid-sts.test.nhn.no', kty: 'RSA', alg: 'PS256', sizeBits: 4096, kid: thumbprint, thumbprint })
  t.same(key.publicJwk, { kty: 'RSA', n: jwk.n, e: jwk.e, kid: thumbprint, alg: 'PS256', use: 'sig' })
  t.equal(key.privateKey.extractable, false)
  t.equal(key.privateKey.type, 'private')
  t.equal(await signAndVerify(key.privateKey, key.publicJwk, 'PS256'), 'PS256')
})

t.test('a download whose privateJwk is an object, or URL-encoded text, is accepted too', async t => {
  const jwk = await privateJwk('RSA-2048')

  const fromObject = await parseClientKey({ ...selvbetjeningDownload(jwk), privateJwk: jwk }, file)
  const fromEncoded = await parseClientKey({ ...selvbetjeningDownload(jwk), privateJwk: encodeURIComponent(JSON.stringify(jwk)) }, file)

  t.equal(fromObject.sizeBits, 2048)
  t.equal(fromEncoded.kid, fromObject.kid)
})

t.test('a private JWK keeps its kid and alg', async t => {
  const jwk = { ...await privateJwk('RSA-2048'), kid: 'rotation-2025-01', alg: 'RS512', use: 'sig' }

  const key = await parseClientKey(jwk, file)

  t.match(key, { kid: 'rotation-2025-01', alg: 'RS512', kty: 'RSA', sizeBits: 2048 })
  t.equal(key.clientId, undefined)
  t.equal(key.authority, undefined)
  t.equal(key.thumbprint, await calculateJwkThumbprint(publicOnly(jwk)))
  t.same(key.publicJwk, { kty: 'RSA', n: jwk.n, e: jwk.e, kid: 'rotation-2025-01', alg: 'RS512', use: 'sig' })
  t.equal(await signAndVerify(key.privateKey, key.publicJwk, 'RS512'), 'RS512')
})

for (const [crv, alg, sizeBits] of [['P-256', 'ES256', 256], ['P-384', 'ES384', 384], ['P-521', 'ES512', 521]] as const) {
  t.test(`an EC ${crv} key defaults to ${alg}`, async t => {
    const jwk = await privateJwk(crv)

    const key = await parseClientKey(jwk, file)

    t.match(key, { kty: 'EC', crv, alg, sizeBits })
    t.same(key.publicJwk, { kty: 'EC', crv, x: jwk.x, y: jwk.y, kid: key.thumbprint, alg, use: 'sig' })
    t.equal(await signAndVerify(key.privateKey, key.publicJwk, alg), alg)
  })
}

t.test('a JWK set with exactly one private key is accepted', async t => {
  const jwk = await privateJwk('P-256')

  t.equal((await parseClientKey({ keys: [jwk] }, file)).alg, 'ES256')
  t.equal((await refusal({ keys: [jwk, jwk] })).message, `${file}: is a JWK set with 2 keys; expected exactly one private key`)
  t.equal((await refusal({ keys: [] })).message, `${file}: is a JWK set with 0 keys; expected exactly one private key`)
  t.equal((await refusal({ keys: ['x'] })).message, `${file}: is a JWK set whose key is not a JSON object`)
})

t.test('HelseID key rules', async t => {
  const rsa = await privateJwk('RSA-2048')
  const ec = await privateJwk('P-384')
  const reason = async (raw: unknown): Promise<string> => (await refusal(raw)).reason

  t.equal(await reason(await privateJwk('RSA-1024')), 'holds a 1024-bit RSA key; HelseID needs at least 2048 bits')
  t.equal(await reason(publicOnly(rsa)), 'holds no private key (it has only the public members n and e); use the private key file')
  t.equal(await reason(publicOnly(ec)), 'holds no private key (it has only the public members crv, x and y); use the private key file')
  t.equal(await reason({ kty: 'oct', k: 'c2VjcmV0' }), 'holds a symmetric (kty "oct") key; HelseID needs an RSA or EC private key')
  t.equal(await reason({ kty: 'OKP', crv: 'Ed25519', x: 'a', d: 'b' }), 'has key type "OKP"; HelseID needs an RSA or EC private key')
  t.equal(await reason({ ...ec, crv: 'secp256k1' }), 'is an EC key on curve "secp256k1"; HelseID accepts P-256, P-384 and P-521')
  t.equal(await reason({ ...rsa, alg: 'ES256' }), 'has alg "ES256", which does not fit an RSA key; use RS256, RS384, RS512, PS256, PS384, PS512 or leave alg out')
  t.equal(await reason({ ...rsa, alg: 'HS256' }), 'has alg "HS256", which does not fit an RSA key; use RS256, RS384, RS512, PS256, PS384, PS512 or leave alg out')
  t.equal(await reason({ ...ec, alg: 'ES256' }), 'has alg "ES256", which does not fit an EC P-384 key; use ES384 or leave alg out')
  t.equal(await reason({ ...rsa, use: 'enc' }), 'is marked for use "enc"; a client key must be a signing key (use "sig")')
  t.equal(await reason({ ...rsa, kid: 7 }), 'has a kid that is not a non-empty string')
  t.equal(await reason({ ...rsa, qi: undefined, dp: 'not base64url!' }), 'is an RSA private key with a missing or malformed dp, qi; all of d, p, q, dp, dq, qi are needed as base64url text')
  t.equal(await reason({ ...publicOnly(ec), x: undefined }), 'is an EC key with a missing or malformed x')
})

t.test('a private key that does not belong to its public members is refused', async t => {
  const [one, other] = [await privateJwk('RSA-2048'), await privateJwk('RSA-4096')]
  const ec = await privateJwk('P-256')
  const otherEc = await privateJwk('P-384')

  t.match((await refusal({ ...other, n: one.n })).reason, /^holds (a private key that does not match its public members|a malformed RSA key)/)
  t.match((await refusal({ ...ec, d: otherEc.d })).reason, /^holds (a private key that does not match its public members|a malformed EC key)/)
})

t.test('JSON that is not a key file is refused with what was expected', async t => {
  const expected = 'expected a Selvbetjening download (extracted JSON with clientId, authority, privateJwk), a private JWK (kty, ...) or a JWK set with one private key ({"keys": [...]})'

  t.equal((await refusal({ clientName: 'x', scopes: [] })).reason, `is JSON but not a key file (found clientName, scopes); ${expected}`)
  t.equal((await refusal({})).reason, `is JSON but not a key file (an empty object); ${expected}`)
  t.equal((await refusal([1])).reason, `holds a list; ${expected}`)
  t.equal((await refusal('x')).reason, `holds string; ${expected}`)
})

t.test('broken downloads say which field is wrong', async t => {
  const download = selvbetjeningDownload(await privateJwk('RSA-2048'))
  const reason = async (patch: Record<string, unknown>): Promise<string> => (await refusal({ ...download, ...patch })).reason

  t.equal(await reason({ clientId: '' }), 'is a Selvbetjening download without a clientId')
  t.equal(await reason({ authority: undefined }), 'is a Selvbetjening download without an authority')
  t.equal(await reason({ authority: 'helseid-sts' }), 'is a Selvbetjening download whose authority is not an http(s) URL: "helseid-sts"')
  t.equal(await reason({ grantTypes: ['authorization_code'] }), 'is a download for a client without the client_credentials grant (grantTypes: authorization_code); the broker needs a machine-to-machine client')
  t.equal(await reason({ privateJwk: '{"kty": "RSA", "d": "broken' }), 'is a Selvbetjening download whose privateJwk is not a JSON object or valid JSON text')
  t.equal(await reason({ privateJwk: JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }) }), 'privateJwk holds a symmetric (kty "oct") key; HelseID needs an RSA or EC private key')
})

t.test('file problems name the file and the OS error code', async t => {
  const dir = t.testdir({ 'garbage.json': 'not json at all {', 'download.zip': 'PK\u0003\u0004rest', 'key.pem': '-----BEGIN PRIVATE KEY-----\nMII\n' })
  await protect(dir, 'garbage.json', 'download.zip', 'key.pem')
  const rejects = async (name: string): Promise<KeyFileError> => {
    try { await loadClientKey(join(dir, name)) } catch (error) { if (error instanceof KeyFileError) return error }
    throw new Error('expected a KeyFileError')
  }

  t.equal((await rejects('missing.json')).message, `${join(dir, 'missing.json')}: cannot read the file: ENOENT`)
  t.match((await rejects('garbage.json')).message, `${join(dir, 'garbage.json')}: is not valid JSON; expected a Selvbetjening download`)
  t.match((await rejects('download.zip')).reason, /^is a zip file; extract the JSON file/)
  t.match((await rejects('key.pem')).reason, /^is a PEM file/)
  t.equal((await rejects('missing.json')).name, 'KeyFileError')
})

t.test('no error message ever contains private key material', async t => {
  const rsa = await privateJwk('RSA-2048')
  const small = await privateJwk('RSA-1024')
  const ec = await privateJwk('P-256')
  const dir = t.testdir({})
  const brokenJson = join(dir, 'broken.json')
  await writeFile(brokenJson, JSON.stringify(selvbetjeningDownload(rsa)).replace('"clientId"', 'clientId'), { mode: 0o600 })
  const messages = [
    (await refusal(small)).message,
    (await refusal({ ...rsa, alg: 'ES512' })).message,
    (await refusal({ ...rsa, p: undefined })).message,
    (await refusal({ ...ec, crv: 'P-384' })).message,
    (await refusal({ ...selvbetjeningDownload(rsa), privateJwk: JSON.stringify(rsa).slice(0, -3) })).message,
    await loadClientKey(brokenJson).then(() => '', (error: unknown) => String(error))
  ]

  const secrets = [...privateValues(rsa), ...privateValues(small), ...privateValues(ec)]
  for (const message of messages) {
    t.ok(message.length > 0)
    for (const secret of secrets) t.notOk(message.includes(secret.slice(0, 16)), 'no private member in the message')
  }
})
