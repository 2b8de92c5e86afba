// Strict RFC 9449 §4.3 verification of a DPoP proof, shared by the demo authority and the demo resource server.

import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK, type JWTPayload } from 'jose'
import type { ReplayCache } from './replay-cache.ts'

/** The asymmetric algorithms HelseID accepts for client assertions and DPoP proofs (helseid-protocol.md §2.5). */
export const approvedSigningAlgorithms: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']

const privateJwkMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

/** A proof that failed verification; `message` is a short reason that holds no secret. */
export class DpopProofRejection extends Error {
  constructor (reason: string, options?: ErrorOptions) {
    super(reason, options)
    this.name = 'DpopProofRejection'
  }
}

/** What the proof must match. */
export interface DpopProofExpectations {
  /** HTTP method of the request, upper case. */
  readonly method: string
  /** The URL the request was sent to; compared without query and fragment. */
  readonly url: string
  readonly nowMs: number
  /** How old `iat` may be, in seconds. */
  readonly maxAgeSeconds: number
  /** How far in the future `iat` may be, in seconds (clock skew). */
  readonly maxFutureSeconds: number
}

/** A proof whose signature, header, htm, htu, iat and jti checked out. */
export interface VerifiedDpopProof {
  readonly claims: JWTPayload
  /** RFC 7638 SHA-256 thumbprint of the proof's public key. */
  readonly jkt: string
}

/**
 * Verifies a DPoP proof and records its jti in `replay`; nonce, `ath` and `cnf.jkt` are left to the caller.
 * @throws DpopProofRejection with the reason when any check fails.
 */
export async function verifyDpopProof (proof: string, expected: DpopProofExpectations, replay: ReplayCache): Promise<VerifiedDpopProof> {
  const jwk = readEmbeddedJwk(proof)
  let claims: JWTPayload
  try {
    const result = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [...approvedSigningAlgorithms],
      currentDate: new Date(expected.nowMs),
      requiredClaims: ['jti', 'htm', 'htu', 'iat']
    })
    claims = result.payload
  } catch (error) {
    throw new DpopProofRejection(`proof did not verify (${errorReason(error)})`, { cause: error })
  }
  if (claims.htm !== expected.method) throw new DpopProofRejection('htm mismatch')
  checkTargetUri(claims.htu, expected.url)
  const iat = claims.iat ?? Number.NaN
  // Whole seconds, as iat itself is: a proof exactly maxAgeSeconds old is still accepted.
  const nowSeconds = Math.floor(expected.nowMs / 1000)
  if (nowSeconds - iat > expected.maxAgeSeconds) throw new DpopProofRejection('iat too old')
  if (iat - nowSeconds > expected.maxFutureSeconds) throw new DpopProofRejection('iat in the future')
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw new DpopProofRejection('jti missing')
  const expiresAtMs = (iat + expected.maxAgeSeconds + 1) * 1000
  if (!replay.remember(claims.jti, expiresAtMs, expected.nowMs)) throw new DpopProofRejection('jti replayed')
  return { claims, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
}

/** The proof header's `jwk`, refused when it is not an object or carries private members. */
function readEmbeddedJwk (proof: string): JWK {
  let jwk: unknown
  try {
    jwk = decodeProtectedHeader(proof).jwk
  } catch (error) {
    throw new DpopProofRejection('proof is not a JWS', { cause: error })
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new DpopProofRejection('jwk header missing')
  if (privateJwkMembers.some(member => member in jwk)) throw new DpopProofRejection('jwk header holds a private key')
  return jwk as JWK
}

/**
 * RFC 9449 §4.3 (9) compares after syntax-based normalisation; like NHN's validator we also refuse an htu
 * that carries a query or fragment at all (§4.2: the client must leave them out).
 */
function checkTargetUri (htu: unknown, requestUrl: string): void {
  if (typeof htu !== 'string' || !URL.canParse(htu)) throw new DpopProofRejection('htu is not a URL')
  const claimed = new URL(htu)
  if (claimed.search !== '' || claimed.hash !== '' || htu.includes('?') || htu.includes('#')) throw new DpopProofRejection('htu carries a query or fragment')
  const actual = new URL(requestUrl)
  actual.search = ''
  actual.hash = ''
  if (claimed.href !== actual.href) throw new DpopProofRejection('htu mismatch')
}

/** A short, secret-free reason for a jose error. */
export function errorReason (error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message
  }
  return 'unknown error'
}

/** The thumbprint of the `jwk` in a JWS header, or undefined when there is none usable; never throws. */
export async function peekJwkThumbprint (jws: string): Promise<string | undefined> {
  try {
    const jwk = decodeProtectedHeader(jws).jwk
    return jwk === undefined ? undefined : await calculateJwkThumbprint(jwk, 'sha256')
  } catch {
    return undefined
  }
}
