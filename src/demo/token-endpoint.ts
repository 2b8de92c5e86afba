// The demo authority's token endpoint decision: every HelseID check in order, then a DPoP-bound access token.

import { randomBytes } from 'node:crypto'
import { SignJWT, type CryptoKey } from 'jose'
import type { Clock } from '../clock.ts'
import { ClientAssertionRejection, consumeClientAssertion, verifyClientAssertion, type VerifiedClientAssertion } from './client-assertion-verifier.ts'
import { DpopProofRejection, verifyDpopProof, type VerifiedDpopProof } from './dpop-proof-verifier.ts'
import type { RegisteredClient } from './fake-authority.ts'
import { parseOrganizationDetails, type OrganizationNumbers, type OrganizationResult } from './organization-details.ts'
import type { ReplayCache } from './replay-cache.ts'

/** What the endpoint needs from the authority. */
export interface TokenEndpointState {
  readonly clock: Clock
  readonly requireNonce: boolean
  readonly tokenLifetimeSeconds: number
  readonly signingKey: { readonly privateKey: CryptoKey, readonly kid: string, readonly alg: string }
  readonly issuer: () => string
  readonly tokenEndpoint: () => string
  readonly currentNonce: () => string
  readonly findClient: (clientId: string) => RegisteredClient | undefined
  readonly assertionReplay: ReplayCache
  readonly proofReplay: ReplayCache
}

/** The parts of the HTTP request the endpoint looks at. */
export interface TokenEndpointRequest {
  readonly contentType: string | undefined
  readonly body: string
  readonly dpop: string | string[] | undefined
}

/** Status, JSON body and the outcome to record; `accessToken` is set only when one was issued. */
export interface TokenEndpointAnswer {
  readonly status: number
  readonly outcome: string
  readonly body: Readonly<Record<string, unknown>>
  readonly accessToken?: string
}

/** Proof iat window at the token endpoint, in seconds either way. */
export const tokenEndpointProofWindowSeconds = 60

const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const claimPrefix = 'helseid://claims/client/'
const selvbetjeningScopePrefix = 'nhn:selvbetjening/'

/** Runs the checks in HelseID's order: request shape, client authentication, DPoP and nonce, scope, organisation. */
export async function answerTokenRequest (state: TokenEndpointState, request: TokenEndpointRequest): Promise<TokenEndpointAnswer> {
  const nowMs = state.clock.nowMs()
  if (!isFormEncoded(request.contentType)) return oauthError(400, 'invalid_request', 'the token request must be application/x-www-form-urlencoded')
  const form = parseForm(request.body)
  if (form === undefined) return oauthError(400, 'invalid_request', 'a parameter was sent more than once')
  const grantType = form.get('grant_type')
  if (grantType === undefined) return oauthError(400, 'invalid_request', 'grant_type is required')
  if (grantType !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'only client_credentials is supported')

  const clientId = form.get('client_id')
  const client = clientId === undefined ? undefined : state.findClient(clientId)
  if (clientId === undefined || client === undefined) return oauthError(401, 'invalid_client', 'unknown client')
  const assertion = form.get('client_assertion')
  if (form.get('client_assertion_type') !== assertionType || assertion === undefined) {
    return oauthError(401, 'invalid_client', `client authentication must be private_key_jwt (${assertionType})`)
  }
  let verifiedAssertion: VerifiedClientAssertion
  try {
    verifiedAssertion = await verifyClientAssertion(assertion, { clientId, issuer: state.issuer(), publicJwks: client.publicJwks, nowMs }, state.assertionReplay)
  } catch (error) {
    if (error instanceof ClientAssertionRejection) return oauthError(401, 'invalid_client', error.message)
    throw error
  }

  let proof: VerifiedDpopProof
  try {
    proof = await verifyProofHeader(state, request.dpop, nowMs)
  } catch (error) {
    if (error instanceof DpopProofRejection) return consumed(state, verifiedAssertion, nowMs, oauthError(400, 'invalid_dpop_proof', error.message))
    throw error
  }
  // The assertion is not consumed here: HelseID accepts the same assertion on the nonce retry (helseid-protocol.md §2.3).
  if (state.requireNonce && proof.claims.nonce !== state.currentNonce()) {
    const description = proof.claims.nonce === undefined ? 'authorization server requires nonce in DPoP proof' : 'DPoP nonce is invalid or expired'
    return oauthError(400, 'use_dpop_nonce', description)
  }
  try {
    consumeClientAssertion(verifiedAssertion, state.assertionReplay, nowMs)
  } catch (error) {
    if (error instanceof ClientAssertionRejection) return oauthError(401, 'invalid_client', error.message)
    throw error
  }

  const scopes = requestedScopes(form.get('scope'), client)
  if (scopes === undefined) return oauthError(400, 'invalid_scope', 'a requested scope is not allowed for this client')
  const details = verifiedAssertion.claims.assertion_details
  // Selvbetjening acts on the client itself: a multi-tenant client may ask for its scopes alone without naming a parent (assumed, unverified).
  const isSelvbetjeningOnly = client.multiTenant === true && details === undefined && scopes.every(scope => scope.startsWith(selvbetjeningScopePrefix))
  const organization: OrganizationResult = isSelvbetjeningOnly
    ? { ok: true, numbers: {} }
    : parseOrganizationDetails(details, {
      multiTenant: client.multiTenant === true,
      ...(client.organization === undefined ? {} : { organization: client.organization })
    })
  if (!organization.ok) return oauthError(400, 'invalid_request', organization.description)

  const accessToken = await signAccessToken(state, { client, scopes, organization: organization.numbers, jkt: proof.jkt, nowMs })
  return {
    status: 200,
    outcome: 'issued',
    accessToken,
    body: { access_token: accessToken, token_type: 'DPoP', expires_in: state.tokenLifetimeSeconds, scope: scopes.join(' ') }
  }
}

async function verifyProofHeader (state: TokenEndpointState, header: string | string[] | undefined, nowMs: number): Promise<VerifiedDpopProof> {
  if (header === undefined || header === '') throw new DpopProofRejection('a DPoP proof is required')
  // Node joins repeated headers with ", "; a compact JWS holds neither character.
  if (typeof header !== 'string' || header.includes(',')) throw new DpopProofRejection('more than one DPoP header')
  return await verifyDpopProof(header, {
    method: 'POST',
    url: state.tokenEndpoint(),
    nowMs,
    maxAgeSeconds: tokenEndpointProofWindowSeconds,
    maxFutureSeconds: tokenEndpointProofWindowSeconds
  }, state.proofReplay)
}

function consumed (state: TokenEndpointState, assertion: VerifiedClientAssertion, nowMs: number, answer: TokenEndpointAnswer): TokenEndpointAnswer {
  state.assertionReplay.remember(assertion.jti, assertion.replayExpiresAtMs, nowMs)
  return answer
}

/** The scopes to grant, or undefined when one is not allowed; no scope means every scope of the client. */
function requestedScopes (scope: string | undefined, client: RegisteredClient): readonly string[] | undefined {
  const requested = [...new Set((scope ?? '').split(' ').filter(item => item !== ''))]
  if (requested.length === 0) return [...client.scopes]
  return requested.every(item => client.scopes.includes(item)) ? requested : undefined
}

interface AccessTokenInput {
  readonly client: RegisteredClient
  readonly scopes: readonly string[]
  readonly organization: OrganizationNumbers
  readonly jkt: string
  readonly nowMs: number
}

async function signAccessToken (state: TokenEndpointState, input: AccessTokenInput): Promise<string> {
  const iat = Math.floor(input.nowMs / 1000)
  // The audience is each scope's resource part: 'nhn:hgd-persontjenesten-api/full-access' → 'nhn:hgd-persontjenesten-api'.
  const audiences = [...new Set(input.scopes.map(scope => scope.split('/')[0] ?? scope))]
  const claims: Record<string, unknown> = {
    client_id: input.client.clientId,
    scope: input.scopes,
    cnf: { jkt: input.jkt },
    [`${claimPrefix}claims/client_tenancy`]: input.client.multiTenant === true ? 'multi-tenant' : 'single-tenant',
    [`${claimPrefix}client_name`]: input.client.clientName ?? input.client.clientId
  }
  if (input.organization.parent !== undefined) claims[`${claimPrefix}claims/orgnr_parent`] = input.organization.parent
  if (input.organization.child !== undefined) claims[`${claimPrefix}claims/orgnr_child`] = input.organization.child
  if (input.client.multiTenant === true && input.client.organization !== undefined) claims[`${claimPrefix}claims/orgnr_supplier`] = input.client.organization
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: state.signingKey.alg, kid: state.signingKey.kid, typ: 'at+jwt' })
    .setIssuer(state.issuer())
    .setAudience(audiences.length === 1 ? (audiences[0] ?? '') : audiences)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + state.tokenLifetimeSeconds)
    .setJti(randomBytes(16).toString('hex'))
    .sign(state.signingKey.privateKey)
}

function isFormEncoded (contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded'
}

/** RFC 6749 §3.2: parameters must not appear more than once; undefined when one does. */
function parseForm (body: string): ReadonlyMap<string, string> | undefined {
  const form = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(body)) {
    if (form.has(name)) return undefined
    form.set(name, value)
  }
  return form
}

function oauthError (status: number, error: string, description: string): TokenEndpointAnswer {
  return { status, outcome: error, body: { error, error_description: description } }
}
