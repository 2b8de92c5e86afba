// A HelseID-like authority on loopback: discovery, JWKS and a strict client_credentials + private_key_jwt + DPoP token endpoint.

import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from 'jose'
import { systemClock, type Clock } from '../clock.ts'
import { approvedSigningAlgorithms, peekJwkThumbprint } from './dpop-proof-verifier.ts'
import { listenOrigin } from '../http/urls.ts'
import { sleepMs } from './loopback.ts'
import { createReplayCache } from './replay-cache.ts'
import { answerTokenRequest, type TokenEndpointAnswer, type TokenEndpointState } from './token-endpoint.ts'

/** A client the authority knows, as HelseID Selvbetjening would have registered it. */
export interface RegisteredClient {
  readonly clientId: string
  /** Public keys allowed to sign client assertions (several during key rotation). */
  readonly publicJwks: readonly JWK[]
  /** Scopes this client may request; all of them when the request names none. */
  readonly scopes: readonly string[]
  /** A single-tenant client's own organisation number (goes to orgnr_parent); a multi-tenant supplier's own number. */
  readonly organization?: string
  /** When true, assertion_details with NO:ORGNR:parent[:child] is required on every request. */
  readonly multiTenant?: boolean
  readonly clientName?: string
}

/** One token request as the authority saw it, rejected or not; values are decoded without trusting them. */
export interface RecordedTokenRequest {
  readonly clientId: string | undefined
  readonly scope: string | undefined
  /** The nonce claim in the DPoP proof, if any. */
  readonly dpopNonce: string | undefined
  /** RFC 7638 thumbprint of the proof's jwk. */
  readonly dpopJkt: string | undefined
  readonly assertionKid: string | undefined
  /** The assertion_details claim as sent. */
  readonly assertionDetails: unknown
  /** 'issued', 'unavailable', or the OAuth error sent ('use_dpop_nonce', 'invalid_client', 'invalid_scope', ...). */
  readonly outcome: string
}

/** How to start the authority. */
export interface FakeAuthorityOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0 (any free port). */
  readonly port?: number
  /** Default true: like HelseID, demand the DPoP nonce handshake on every token request. */
  readonly requireNonce?: boolean
  /** Access token lifetime; default 300. */
  readonly tokenLifetimeSeconds?: number
  readonly clients?: readonly RegisteredClient[]
  /** Source of time for every check and claim; default the system clock. */
  readonly clock?: Clock
}

/** A running authority. */
export interface FakeAuthority {
  /** 'http://127.0.0.1:<port>' (no trailing slash). */
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly jwksUri: string
  readonly tokenRequests: readonly RecordedTokenRequest[]
  readonly issuedTokens: readonly string[]
  /** Adds a client or replaces the one with the same id. @throws TypeError for a key with private members. */
  registerClient (client: RegisteredClient): void
  /** The client as currently registered, or undefined. */
  registeredClient (clientId: string): RegisteredClient | undefined
  /** Replaces the token signing key (a key rollover): tokens signed before no longer verify against the JWKS. */
  rotateSigningKey (): Promise<void>
  /** Invalidates the current DPoP nonce; the next request without the new one gets use_dpop_nonce. */
  rotateNonce (): void
  /** 'ok' normal; 'unavailable' → 503 on the token endpoint; 'slow' → the token endpoint waits `delayMs` before answering. */
  setTokenEndpointMode (mode: 'ok' | 'unavailable' | 'slow', delayMs?: number): void
  /** Stops listening and drops open connections. */
  close (): Promise<void>
}

const privateJwkMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

/** Starts the authority on loopback with a fresh ES256 signing key. */
export async function startFakeAuthority (options: FakeAuthorityOptions = {}): Promise<FakeAuthority> {
  const clients = new Map<string, RegisteredClient>()
  const registerClient = (client: RegisteredClient): void => {
    if (client.publicJwks.length === 0) throw new TypeError(`client ${client.clientId} has no public keys`)
    if (client.publicJwks.some(jwk => privateJwkMembers.some(member => member in jwk))) {
      throw new TypeError(`client ${client.clientId}: publicJwks must hold public keys only`)
    }
    clients.set(client.clientId, client)
  }
  for (const client of options.clients ?? []) registerClient(client)

  let signing = await newSigningKey()
  const tokenRequests: RecordedTokenRequest[] = []
  const issuedTokens: string[] = []
  const closing = new AbortController()
  let mode: 'ok' | 'unavailable' | 'slow' = 'ok'
  let slowDelayMs = 0
  let nonce = newNonce()
  let issuer = ''

  const state: TokenEndpointState = {
    clock: options.clock ?? systemClock,
    requireNonce: options.requireNonce ?? true,
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 300,
    get signingKey () { return { privateKey: signing.privateKey, kid: signing.kid, alg: 'ES256' } },
    issuer: () => issuer,
    tokenEndpoint: () => `${issuer}/connect/token`,
    currentNonce: () => nonce,
    findClient: clientId => clients.get(clientId),
    assertionReplay: createReplayCache(),
    proofReplay: createReplayCache()
  }

  const app = Fastify({ logger: false, forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  // Keep every body as raw text; the token endpoint itself refuses anything but form encoding.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })

  app.get('/.well-known/openid-configuration', async () => ({
    issuer,
    token_endpoint: state.tokenEndpoint(),
    jwks_uri: `${issuer}/.well-known/openid-configuration/jwks`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: approvedSigningAlgorithms,
    dpop_signing_alg_values_supported: approvedSigningAlgorithms,
    grant_types_supported: ['client_credentials'],
    scopes_supported: [...new Set([...clients.values()].flatMap(client => client.scopes))]
  }))

  app.get('/.well-known/openid-configuration/jwks', async () => ({
    keys: [{ ...signing.publicJwk, kid: signing.kid, alg: 'ES256', use: 'sig' }]
  }))

  app.post('/connect/token', async (request, reply) => {
    const body = typeof request.body === 'string' ? request.body : ''
    const dpop = request.headers.dpop
    const observed = await observeTokenRequest(body, dpop)
    if (mode === 'slow') await sleepMs(slowDelayMs, closing.signal)
    const answer: TokenEndpointAnswer = mode === 'unavailable'
      ? { status: 503, outcome: 'unavailable', body: { error: 'temporarily_unavailable', error_description: 'the token service is unavailable' } }
      : await answerTokenRequest(state, { contentType: request.headers['content-type'], body, dpop })
    tokenRequests.push({ ...observed, outcome: answer.outcome })
    if (answer.accessToken !== undefined) issuedTokens.push(answer.accessToken)
    reply.code(answer.status).header('cache-control', 'no-store').header('pragma', 'no-cache')
    if (answer.outcome === 'use_dpop_nonce') reply.header('dpop-nonce', nonce)
    return answer.body
  })

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  issuer = listenOrigin(app.server.address(), options.host ?? '127.0.0.1')

  return {
    issuer,
    tokenEndpoint: state.tokenEndpoint(),
    jwksUri: `${issuer}/.well-known/openid-configuration/jwks`,
    tokenRequests,
    issuedTokens,
    registerClient,
    registeredClient: clientId => clients.get(clientId),
    rotateNonce () { nonce = newNonce() },
    async rotateSigningKey () { signing = await newSigningKey() },
    setTokenEndpointMode (newMode, delayMs = 0) {
      mode = newMode
      slowDelayMs = delayMs
    },
    async close () {
      closing.abort()
      await app.close()
    }
  }
}

/** What the record keeps of a request, read without verification so that rejected requests are recorded too. */
async function observeTokenRequest (body: string, dpop: string | string[] | undefined): Promise<Omit<RecordedTokenRequest, 'outcome'>> {
  const form = new URLSearchParams(body)
  const assertion = form.get('client_assertion') ?? undefined
  const proof = typeof dpop === 'string' ? dpop : undefined
  const proofNonce = proof === undefined ? undefined : safely(() => decodeJwt(proof).nonce)
  const assertionKid = assertion === undefined ? undefined : safely(() => decodeProtectedHeader(assertion).kid)
  return {
    clientId: form.get('client_id') ?? undefined,
    scope: form.get('scope') ?? undefined,
    dpopNonce: typeof proofNonce === 'string' ? proofNonce : undefined,
    dpopJkt: proof === undefined ? undefined : await peekJwkThumbprint(proof),
    assertionKid: typeof assertionKid === 'string' ? assertionKid : undefined,
    assertionDetails: assertion === undefined ? undefined : safely(() => decodeJwt(assertion).assertion_details)
  }
}

function safely (read: () => unknown): unknown {
  try {
    return read()
  } catch {
    return undefined
  }
}

function newNonce (): string {
  return randomBytes(24).toString('base64url')
}

async function newSigningKey (): Promise<{ privateKey: CryptoKey, publicJwk: JWK, kid: string }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { privateKey, publicJwk, kid: await calculateJwkThumbprint(publicJwk, 'sha256') }
}
