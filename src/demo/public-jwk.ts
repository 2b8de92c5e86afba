// How the fake Selvbetjening reads a public JWK from a request body, as strictly as a registration API should.

import { createHash, createPublicKey } from 'node:crypto'
import type { JWK } from 'jose'
import { approvedSigningAlgorithms } from './dpop-proof-verifier.ts'

const privateJwkMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
const ecCurves = ['P-256', 'P-384', 'P-521']

/** A request body as a public JWK (an object, or a JSON string literal holding one, §6.1), or why it is refused. */
export function readPublicJwk (body: string): JWK | string {
  let value: unknown
  try {
    value = JSON.parse(body)
    if (typeof value === 'string') value = JSON.parse(value)
  } catch {
    return 'the body is not JSON'
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the body is not a JWK object'
  const jwk = value as Record<string, unknown>
  if (privateJwkMembers.some(member => member in jwk)) return 'the JWK holds private key members; send the public key only'
  if (jwk.alg !== undefined && (typeof jwk.alg !== 'string' || !approvedSigningAlgorithms.includes(jwk.alg))) return `alg ${String(jwk.alg)} is not allowed`
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid === '')) return 'kid must be a non-empty string'
  let publicJwk: JWK
  if (jwk.kty === 'RSA') {
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'an RSA JWK needs n and e'
    publicJwk = { kty: 'RSA', n: jwk.n, e: jwk.e }
  } else if (jwk.kty === 'EC') {
    if (typeof jwk.crv !== 'string' || !ecCurves.includes(jwk.crv) || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return 'an EC JWK needs crv (P-256, P-384, P-521), x and y'
    publicJwk = { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y }
  } else {
    return 'kty must be RSA or EC'
  }
  try {
    const key = createPublicKey({ key: publicJwk, format: 'jwk' })
    const bits = key.asymmetricKeyDetails?.modulusLength
    if (jwk.kty === 'RSA' && (bits === undefined || bits < 2048)) return `the RSA key has ${String(bits)} bits; at least 2048 are required`
  } catch {
    return 'the JWK is not a valid public key'
  }
  return {
    ...publicJwk,
    ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}),
    ...(typeof jwk.alg === 'string' ? { alg: jwk.alg } : {}),
    ...(typeof jwk.use === 'string' ? { use: jwk.use } : {})
  }
}

/** RFC 7638 SHA-256 thumbprint of an RSA or EC public JWK. */
export function thumbprintOf (jwk: JWK): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}
