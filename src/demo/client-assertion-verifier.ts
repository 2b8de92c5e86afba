// Strict verification of a private_key_jwt client assertion as HelseID checks it (helseid-protocol.md §2.3).

import { createLocalJWKSet, errors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult } from 'jose'
import { approvedSigningAlgorithms, errorReason } from './dpop-proof-verifier.ts'
import type { ReplayCache } from './replay-cache.ts'

/** Longest assertion lifetime HelseID accepts (exp − iat), in seconds. */
export const maxAssertionLifetimeSeconds = 60
/** Clock skew tolerated on iat, nbf and exp, in seconds. */
export const assertionClockSkewSeconds = 10

/** A client assertion that failed; `message` is a short reason holding no secret. */
export class ClientAssertionRejection extends Error {
  constructor (reason: string, options?: ErrorOptions) {
    super(reason, options)
    this.name = 'ClientAssertionRejection'
  }
}

/** What the assertion must satisfy. */
export interface ClientAssertionExpectations {
  readonly clientId: string
  /** The authority's issuer string; `aud` must be exactly this (or an array holding it). */
  readonly issuer: string
  readonly publicJwks: readonly JWK[]
  readonly nowMs: number
}

/** An assertion that verified; its jti is not yet consumed (see `consumeClientAssertion`). */
export interface VerifiedClientAssertion {
  readonly claims: JWTPayload
  readonly jti: string
  /** When the jti may be forgotten: after `exp` plus skew, in ms. */
  readonly replayExpiresAtMs: number
}

/**
 * Verifies signature (any of the client's keys), typ, iss, sub, aud, lifetime and that the jti is unused.
 * @throws ClientAssertionRejection with the reason when any check fails.
 */
export async function verifyClientAssertion (assertion: string, expected: ClientAssertionExpectations, replay: ReplayCache): Promise<VerifiedClientAssertion> {
  const options: JWTVerifyOptions = {
    typ: 'client-authentication+jwt',
    issuer: expected.clientId,
    subject: expected.clientId,
    audience: expected.issuer,
    algorithms: [...approvedSigningAlgorithms],
    currentDate: new Date(expected.nowMs),
    clockTolerance: assertionClockSkewSeconds,
    requiredClaims: ['exp', 'iat', 'jti']
  }
  let claims: JWTPayload
  try {
    claims = (await verifyWithAnyKey(assertion, expected.publicJwks, options)).payload
  } catch (error) {
    throw new ClientAssertionRejection(`client assertion did not verify (${errorReason(error)})`, { cause: error })
  }
  const nowSeconds = Math.floor(expected.nowMs / 1000)
  const iat = claims.iat ?? Number.NaN
  const exp = claims.exp ?? Number.NaN
  if (exp - iat > maxAssertionLifetimeSeconds) throw new ClientAssertionRejection(`assertion lifetime exceeds ${maxAssertionLifetimeSeconds} s`)
  if (iat - nowSeconds > assertionClockSkewSeconds) throw new ClientAssertionRejection('iat in the future')
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw new ClientAssertionRejection('jti missing')
  const jti = `${expected.clientId} ${claims.jti}`
  if (replay.isKnown(jti, expected.nowMs)) throw new ClientAssertionRejection('jti replayed')
  return { claims, jti, replayExpiresAtMs: (exp + assertionClockSkewSeconds + 1) * 1000 }
}

/**
 * Marks the assertion's jti as used.
 * @throws ClientAssertionRejection when a concurrent request used it first.
 */
export function consumeClientAssertion (verified: VerifiedClientAssertion, replay: ReplayCache, nowMs: number): void {
  if (!replay.remember(verified.jti, verified.replayExpiresAtMs, nowMs)) throw new ClientAssertionRejection('jti replayed')
}

/** Key rotation: without a kid several registered keys may match; try each of them. */
async function verifyWithAnyKey (assertion: string, publicJwks: readonly JWK[], options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  const keySet = createLocalJWKSet({ keys: [...publicJwks] })
  try {
    return await jwtVerify(assertion, keySet, options)
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error
    let lastError: unknown = error
    for await (const key of error) {
      try {
        return await jwtVerify(assertion, key, options)
      } catch (keyError) {
        lastError = keyError
      }
    }
    throw lastError
  }
}
