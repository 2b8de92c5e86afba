// What a DPoP-protected NHN resource server checks on each call: token, proof, binding, nonce, scope and org number.

import { createHash } from 'node:crypto'
import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { Clock } from '../clock.ts'
import { DpopProofRejection, approvedSigningAlgorithms, errorReason, verifyDpopProof } from './dpop-proof-verifier.ts'
import type { ReplayCache } from './replay-cache.ts'

/** NHN's sample validator tolerates 5 s either way on a proof's iat (helseid-protocol.md §3.3). */
export const resourceProofWindowSeconds = 5

const orgnrParentClaim = 'helseid://claims/client/claims/orgnr_parent'

/** The resource server's trust settings and state. */
export interface ResourceAuthContext {
  readonly issuer: string
  readonly audience: string
  readonly keys: JWTVerifyGetKey
  readonly clock: Clock
  readonly replay: ReplayCache
  /** The nonce proofs must carry, or undefined when nonces are not demanded. */
  readonly requiredNonce: () => string | undefined
}

/** The parts of the request that authentication looks at. */
export interface ResourceAuthRequest {
  readonly method: string
  /** origin + path, without query. */
  readonly url: string
  readonly authorization: string | undefined
  readonly dpop: string | string[] | undefined
  readonly requiredScope: string
  /** Default true: the token must carry orgnr_parent (Persontjenesten); Selvbetjening acts on the client and does not. */
  readonly requireOrganization?: boolean
}

/** Accepted, or the status, WWW-Authenticate value and the reason to record. */
export type ResourceAuthResult =
  | { readonly ok: true, readonly tokenClaims: JWTPayload, readonly proofClaims: JWTPayload }
  | {
    readonly ok: false
    readonly status: 401 | 403
    readonly reason: string
    readonly wwwAuthenticate?: string
    readonly sendNonce?: boolean
    readonly tokenClaims?: JWTPayload
    readonly proofClaims?: JWTPayload
  }

const algs = approvedSigningAlgorithms.join(' ')

/** Authenticates and authorises one request; never throws for bad input. */
export async function authorizeResourceRequest (context: ResourceAuthContext, request: ResourceAuthRequest): Promise<ResourceAuthResult> {
  const nowMs = context.clock.nowMs()
  const scheme = /^(\S+)\s+(\S+)$/.exec(request.authorization ?? '')
  if (request.authorization === undefined) return unauthorized('invalid_token', 'missing authorization', `DPoP algs="${algs}"`)
  if (scheme === null) return unauthorized('invalid_token', 'malformed authorization header')
  const [, schemeName = '', token = ''] = scheme
  if (schemeName.toLowerCase() !== 'dpop') return unauthorized('invalid_token', `${schemeName} scheme not accepted; use DPoP`)

  let tokenClaims: JWTPayload
  try {
    const verified = await jwtVerify(token, context.keys, {
      issuer: context.issuer,
      audience: context.audience,
      typ: 'at+jwt',
      algorithms: [...approvedSigningAlgorithms],
      currentDate: new Date(nowMs),
      requiredClaims: ['exp']
    })
    tokenClaims = verified.payload
  } catch (error) {
    return unauthorized('invalid_token', `token rejected (${errorReason(error)})`)
  }
  const cnf = tokenClaims.cnf
  const boundJkt = typeof cnf === 'object' && cnf !== null && 'jkt' in cnf ? cnf.jkt : undefined
  if (typeof boundJkt !== 'string') return unauthorized('invalid_token', 'token is not DPoP-bound (no cnf.jkt)', undefined, { tokenClaims })

  if (request.dpop === undefined) return unauthorized('invalid_dpop_proof', 'DPoP proof missing', undefined, { tokenClaims })
  // Node joins repeated headers with ", "; a compact JWS holds neither character.
  if (typeof request.dpop !== 'string' || request.dpop.includes(',')) return unauthorized('invalid_dpop_proof', 'more than one DPoP header', undefined, { tokenClaims })
  let proofClaims: JWTPayload
  let proofJkt: string
  try {
    const proof = await verifyDpopProof(request.dpop, {
      method: request.method,
      url: request.url,
      nowMs,
      maxAgeSeconds: resourceProofWindowSeconds,
      maxFutureSeconds: resourceProofWindowSeconds
    }, context.replay)
    proofClaims = proof.claims
    proofJkt = proof.jkt
  } catch (error) {
    if (!(error instanceof DpopProofRejection)) throw error
    return unauthorized('invalid_dpop_proof', error.message, undefined, { tokenClaims })
  }
  const claims = { tokenClaims, proofClaims }
  if (proofClaims.ath !== createHash('sha256').update(token).digest('base64url')) return unauthorized('invalid_token', 'ath mismatch', undefined, claims)
  if (proofJkt !== boundJkt) return unauthorized('invalid_token', 'proof key does not match cnf.jkt', undefined, claims)
  const nonce = context.requiredNonce()
  if (nonce !== undefined && proofClaims.nonce !== nonce) {
    return { ok: false, status: 401, reason: 'use_dpop_nonce', wwwAuthenticate: 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', sendNonce: true, ...claims }
  }

  if (!scopesOf(tokenClaims.scope).includes(request.requiredScope)) return { ok: false, status: 403, reason: `insufficient_scope:${request.requiredScope} missing`, ...claims }
  const parent = tokenClaims[orgnrParentClaim]
  if (request.requireOrganization !== false && (typeof parent !== 'string' || parent === '')) return { ok: false, status: 403, reason: 'forbidden:orgnr_parent missing', ...claims }
  return { ok: true, ...claims }
}

/** HelseID sends scope as an array; RFC 9068 as a space-separated string; accept both. */
function scopesOf (scope: unknown): readonly string[] {
  if (typeof scope === 'string') return scope.split(' ').filter(item => item !== '')
  if (Array.isArray(scope)) return scope.filter((item): item is string => typeof item === 'string')
  return []
}

function unauthorized (
  error: 'invalid_token' | 'invalid_dpop_proof',
  reason: string,
  wwwAuthenticate = `DPoP error="${error}", algs="${algs}"`,
  claims: { tokenClaims?: JWTPayload, proofClaims?: JWTPayload } = {}
): ResourceAuthResult {
  return { ok: false, status: 401, reason: `${error}:${reason}`, wwwAuthenticate, ...claims }
}
