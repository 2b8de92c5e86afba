// Checks a private JWK against HelseID's rules (RSA >= 2048 or EC P-256/384/521, approved alg) without touching crypto.

import type { JWK } from 'jose'
import type { ClientKeyAlgorithm } from './client-key.ts'

/** A private JWK that passed the checks, split into what may be shown and what must not. */
export interface CheckedJwk {
  readonly kty: 'RSA' | 'EC'
  readonly alg: ClientKeyAlgorithm
  readonly crv?: 'P-256' | 'P-384' | 'P-521'
  readonly sizeBits: number
  /** The file's own kid, when it has one. */
  readonly kid?: string
  /** Only the members needed to import the private key (no kid, alg, use, key_ops, ext). */
  readonly privateJwk: JWK
  /** Only the public members (kty, n, e or kty, crv, x, y). */
  readonly publicJwk: JWK
}

/** The algorithms HelseID accepts for client assertions and DPoP proofs (helseid-protocol.md §2.5). */
export const clientKeyAlgorithms: readonly ClientKeyAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']

const curves = { 'P-256': { alg: 'ES256', sizeBits: 256 }, 'P-384': { alg: 'ES384', sizeBits: 384 }, 'P-521': { alg: 'ES512', sizeBits: 521 } } as const
const minimumRsaBits = 2048
const base64url = /^[A-Za-z0-9_-]+$/

/** Checks a parsed private JWK; returns the reason it is unusable as a string, or the checked key. */
export function checkPrivateJwk (jwk: Readonly<Record<string, unknown>>): CheckedJwk | string {
  const kty = jwk.kty
  if (kty === 'oct') return 'holds a symmetric (kty "oct") key; HelseID needs an RSA or EC private key'
  if (kty !== 'RSA' && kty !== 'EC') return `${typeof kty === 'string' ? `has key type ${JSON.stringify(kty)}` : 'has no key type (kty)'}; HelseID needs an RSA or EC private key`
  const kid = jwk.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) return 'has a kid that is not a non-empty string'
  if (jwk.use !== undefined && jwk.use !== 'sig') return `is marked for use ${JSON.stringify(jwk.use)}; a client key must be a signing key (use "sig")`
  const checked = kty === 'RSA' ? checkRsa(jwk) : checkEc(jwk)
  if (typeof checked === 'string') return checked
  const alg = chooseAlg(jwk.alg, kty, checked.crv)
  if (typeof alg === 'string') return alg
  return { ...checked, alg: alg.alg, ...(kid === undefined ? {} : { kid }) }
}

type KeyParts = Omit<CheckedJwk, 'alg' | 'kid'>

function checkRsa (jwk: Readonly<Record<string, unknown>>): KeyParts | string {
  const missingPublic = missing(jwk, ['n', 'e'])
  if (missingPublic.length > 0) return `is an RSA key with a missing or malformed ${missingPublic.join(', ')}`
  if (jwk.d === undefined) return 'holds no private key (it has only the public members n and e); use the private key file'
  const missingPrivate = missing(jwk, ['d', 'p', 'q', 'dp', 'dq', 'qi'])
  if (missingPrivate.length > 0) return `is an RSA private key with a missing or malformed ${missingPrivate.join(', ')}; all of d, p, q, dp, dq, qi are needed as base64url text`
  const sizeBits = rsaModulusBits(String(jwk.n))
  if (sizeBits < minimumRsaBits) return `holds a ${sizeBits}-bit RSA key; HelseID needs at least ${minimumRsaBits} bits`
  const pick = (names: readonly string[]): JWK => Object.fromEntries([['kty', 'RSA'], ...names.map(name => [name, String(jwk[name])])]) as JWK
  return { kty: 'RSA', sizeBits, privateJwk: pick(['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi']), publicJwk: pick(['n', 'e']) }
}

function checkEc (jwk: Readonly<Record<string, unknown>>): KeyParts | string {
  const crv = jwk.crv
  if (crv !== 'P-256' && crv !== 'P-384' && crv !== 'P-521') return `is an EC key on curve ${typeof crv === 'string' ? JSON.stringify(crv) : '(missing)'}; HelseID accepts P-256, P-384 and P-521`
  const missingPublic = missing(jwk, ['x', 'y'])
  if (missingPublic.length > 0) return `is an EC key with a missing or malformed ${missingPublic.join(', ')}`
  if (jwk.d === undefined) return 'holds no private key (it has only the public members crv, x and y); use the private key file'
  if (missing(jwk, ['d']).length > 0) return 'is an EC key with a malformed d (expected base64url text)'
  const pick = (names: readonly string[]): JWK => Object.fromEntries([['kty', 'EC'], ['crv', crv], ...names.map(name => [name, String(jwk[name])])]) as JWK
  return { kty: 'EC', crv, sizeBits: curves[crv].sizeBits, privateJwk: pick(['x', 'y', 'd']), publicJwk: pick(['x', 'y']) }
}

// helseid-protocol.md §2.5: PS256 for RSA keys without alg (what NHN's rotation registers), ES* by curve.
function chooseAlg (given: unknown, kty: 'RSA' | 'EC', crv: KeyParts['crv']): { readonly alg: ClientKeyAlgorithm } | string {
  const fallback: ClientKeyAlgorithm = kty === 'RSA' ? 'PS256' : curves[crv ?? 'P-256'].alg
  if (given === undefined) return { alg: fallback }
  const fits = kty === 'RSA' ? clientKeyAlgorithms.filter(alg => !alg.startsWith('ES')) : [fallback]
  const match = fits.find(alg => alg === given)
  if (match !== undefined) return { alg: match }
  const keyName = kty === 'RSA' ? 'an RSA key' : `an EC ${crv ?? ''} key`
  return `has alg ${typeof given === 'string' ? JSON.stringify(given) : 'that is not a string'}, which does not fit ${keyName}; use ${fits.join(', ')} or leave alg out`
}

function missing (jwk: Readonly<Record<string, unknown>>, names: readonly string[]): string[] {
  return names.filter(name => {
    const value = jwk[name]
    return typeof value !== 'string' || !base64url.test(value)
  })
}

function rsaModulusBits (n: string): number {
  const bytes = Buffer.from(n, 'base64url')
  let start = 0
  while (start < bytes.length && bytes[start] === 0) start++
  const first = bytes[start]
  if (first === undefined) return 0
  return (bytes.length - start - 1) * 8 + (32 - Math.clz32(first))
}
