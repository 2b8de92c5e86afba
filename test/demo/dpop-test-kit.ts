// Test aid: clients, client assertions and DPoP proofs built with jose by hand, to drive the demo servers directly.

import { createHash, randomUUID } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import type { FakeAuthority } from '../../src/demo/fake-authority.ts'

export interface TestKey {
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
  readonly privateJwk: JWK
  readonly jkt: string
  readonly alg: string
}

export async function createTestKey (alg: 'ES256' | 'PS256' | 'RS256' = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'ES256' ? {} : { modulusLength: 2048 }) })
  const publicJwk = await exportJWK(publicKey)
  return { privateKey, publicJwk, privateJwk: await exportJWK(privateKey), jkt: await calculateJwkThumbprint(publicJwk, 'sha256'), alg }
}

export interface AssertionOptions {
  readonly clientId: string
  readonly audience: string | string[]
  readonly nowMs: number
  readonly key: TestKey
  readonly kid?: string
  readonly typ?: string
  readonly iss?: string
  readonly sub?: string
  readonly jti?: string
  readonly lifetimeSeconds?: number
  readonly iatOffsetSeconds?: number
  readonly details?: unknown
}

export async function createAssertion (options: AssertionOptions): Promise<string> {
  const iat = Math.floor(options.nowMs / 1000) + (options.iatOffsetSeconds ?? 0)
  const payload: JWTPayload = options.details === undefined ? {} : { assertion_details: options.details }
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: options.key.alg, typ: options.typ ?? 'client-authentication+jwt', ...(options.kid === undefined ? {} : { kid: options.kid }) })
    .setIssuer(options.iss ?? options.clientId)
    .setSubject(options.sub ?? options.clientId)
    .setAudience(options.audience)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + (options.lifetimeSeconds ?? 10))
    .setJti(options.jti ?? randomUUID())
    .sign(options.key.privateKey)
}

export interface ProofOptions {
  readonly htm: string
  readonly htu: string
  readonly nowMs: number
  readonly nonce?: string
  readonly accessToken?: string
  readonly ath?: string
  readonly jti?: string
  readonly typ?: string
  readonly iatOffsetSeconds?: number
  /** Embed this JWK instead of the key's public one (e.g. the private JWK). */
  readonly embeddedJwk?: JWK
}

export async function createProof (key: TestKey, options: ProofOptions): Promise<string> {
  const payload: JWTPayload = { htm: options.htm, htu: options.htu, jti: options.jti ?? randomUUID() }
  if (options.nonce !== undefined) payload.nonce = options.nonce
  const ath = options.ath ?? (options.accessToken === undefined ? undefined : accessTokenHash(options.accessToken))
  if (ath !== undefined) payload.ath = ath
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, typ: options.typ ?? 'dpop+jwt', jwk: options.embeddedJwk ?? key.publicJwk })
    .setIssuedAt(Math.floor(options.nowMs / 1000) + (options.iatOffsetSeconds ?? 0))
    .sign(key.privateKey)
}

export function accessTokenHash (accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url')
}

export interface TokenResponse {
  readonly status: number
  readonly body: Record<string, unknown>
  readonly headers: Headers
}

export async function postToken (authority: FakeAuthority, form: Record<string, string>, dpop?: string, contentType = 'application/x-www-form-urlencoded'): Promise<TokenResponse> {
  const headers: Record<string, string> = { 'content-type': contentType }
  if (dpop !== undefined) headers.dpop = dpop
  const body = contentType.startsWith('application/json') ? JSON.stringify(form) : new URLSearchParams(form).toString()
  const response = await fetch(authority.tokenEndpoint, { method: 'POST', headers, body })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

export function tokenForm (clientId: string, assertion: string, scope?: string): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
    ...(scope === undefined ? {} : { scope })
  }
}

export interface FetchTokenOptions {
  readonly clientId: string
  readonly clientKey: TestKey
  readonly dpopKey: TestKey
  readonly nowMs: () => number
  readonly scope?: string
  readonly details?: unknown
}

/** The whole HelseID exchange, nonce handshake included: fresh assertion and proof on each POST. */
export async function fetchToken (authority: FakeAuthority, options: FetchTokenOptions): Promise<TokenResponse> {
  let nonce: string | undefined
  for (let attempt = 0; attempt < 2; attempt++) {
    const assertion = await createAssertion({ clientId: options.clientId, audience: authority.issuer, nowMs: options.nowMs(), key: options.clientKey, details: options.details })
    const proof = await createProof(options.dpopKey, { htm: 'POST', htu: authority.tokenEndpoint, nowMs: options.nowMs(), ...(nonce === undefined ? {} : { nonce }) })
    const response = await postToken(authority, tokenForm(options.clientId, assertion, options.scope), proof)
    if (response.body.error !== 'use_dpop_nonce') return response
    nonce = response.headers.get('dpop-nonce') ?? undefined
  }
  throw new Error('nonce handshake did not finish')
}

export async function fetchAccessToken (authority: FakeAuthority, options: FetchTokenOptions): Promise<string> {
  const response = await fetchToken(authority, options)
  if (typeof response.body.access_token !== 'string') throw new Error(`no token: ${JSON.stringify(response.body)}`)
  return response.body.access_token
}
