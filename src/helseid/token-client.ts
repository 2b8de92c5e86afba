// One client_credentials token request to HelseID: private_key_jwt + DPoP, with the nonce handshake.

import { BrokerError, IdpRejectedError } from '../errors.ts'
import type { Clock } from '../clock.ts'
import type { OrganizationConfig } from '../config/config.ts'
import type { ClientKey } from '../keys/client-key.ts'
import { createClientAssertion } from './client-assertion.ts'
import type { Discovery } from './discovery.ts'
import type { NonceStore } from './dpop-nonces.ts'
import { accessTokenHash, type DpopKey } from './dpop-key.ts'
import type { FetchLike } from './fetch-like.ts'
import { parseTokenResponse, type TokenResponseOutcome } from './token-response.ts'
import { networkErrorCode } from '../http/network-error.ts'

/** Everything that decides which token HelseID issues. */
export interface TokenRequest {
  readonly clientId: string
  readonly key: ClientKey
  readonly organization: OrganizationConfig
  readonly scopes: readonly string[]
  readonly dpopKey: DpopKey
}

/** A DPoP-bound access token as the broker keeps it. Never logged. */
export interface AccessToken {
  readonly value: string
  /** base64url(SHA-256(value)), computed once for every proof's `ath`. */
  readonly ath: string
  readonly scopes: readonly string[]
  readonly issuedAtMs: number
  readonly expiresAtMs: number
  /** Thumbprint of the DPoP key the token is bound to. */
  readonly dpopJkt: string
}

export interface TokenClientOptions {
  readonly discovery: Discovery
  readonly fetch: FetchLike
  readonly clock: Clock
  readonly nonces: NonceStore
  readonly timeoutMs: number
  /** Called when HelseID asks for a (new) nonce; for logs and metrics. */
  readonly onNonceRequested?: () => void
}

/** Sends token requests; `fetchToken` throws IdpRejectedError (final) or BrokerError BROKER_IDP_UNREACHABLE (retryable). */
export interface TokenClient {
  readonly fetchToken: (request: TokenRequest) => Promise<AccessToken>
}

/** Creates the token client for one issuer. */
export function createTokenClient (options: TokenClientOptions): TokenClient {
  // Per token endpoint origin, while no nonce is known for it: the first request, settled once it is answered.
  const learning = new Map<string, Promise<void>>()

  /**
   * Sends `exchange` at once when a nonce is known or nobody is learning one; otherwise waits until the request
   * that is learning it has been answered, however that ended, and then sends (with whatever nonce it left).
   */
  const afterFirstNonce = async <T>(nonceKey: string, exchange: () => Promise<T>): Promise<T> => {
    if (options.nonces.get(nonceKey) !== undefined) return await exchange()
    const running = learning.get(nonceKey)
    if (running !== undefined) {
      await running
      return await exchange()
    }
    const sent = exchange()
    // Never rejects: the others go on however this request ends (token, use_dpop_nonce, refusal, timeout).
    learning.set(nonceKey, sent.then(() => {}, () => {}))
    try {
      return await sent
    } finally {
      learning.delete(nonceKey)
    }
  }

  return {
    async fetchToken (request) {
      const metadata = await options.discovery.get()
      const nonceKey = new URL(metadata.tokenEndpoint).origin
      /** One token endpoint call with the current nonce; remembers the nonce the answer carries. */
      const exchange = async (): Promise<{ outcome: TokenResponseOutcome, newNonce: string | null }> => {
        const nowMs = options.clock.nowMs()
        const nonce = options.nonces.get(nonceKey)
        const proof = request.dpopKey.proof(
          nonce === undefined
            ? { htm: 'POST', htu: metadata.tokenEndpoint }
            : { htm: 'POST', htu: metadata.tokenEndpoint, nonce },
          nowMs)
        const assertion = await createClientAssertion({
          clientId: request.clientId,
          issuer: metadata.issuer,
          key: request.key,
          organization: request.organization,
          nowMs
        })
        const body = new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: request.clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
          scope: request.scopes.join(' ')
        }).toString()
        const response = await send(options, metadata.tokenEndpoint, proof, body)
        const newNonce = response.headers.get('dpop-nonce')
        if (newNonce !== null && newNonce !== '') options.nonces.set(nonceKey, newNonce)
        return { outcome: parseTokenResponse(response.status, response.text), newNonce }
      }
      // On a cold start only one request per token endpoint does the nonce handshake; the rest wait for its nonce.
      // RFC 9449 §8: answer use_dpop_nonce exactly once, with the nonce the server just gave.
      for (let attempt = 0; ; attempt++) {
        const { outcome, newNonce } = attempt === 0 ? await afterFirstNonce(nonceKey, exchange) : await exchange()
        if (outcome.kind === 'nonce-required' && attempt === 0 && newNonce !== null && newNonce !== '') {
          options.onNonceRequested?.()
          continue
        }
        if (outcome.kind === 'nonce-required') {
          throw new IdpRejectedError('use_dpop_nonce', 'HelseID asked for a DPoP nonce again after the nonce retry')
        }
        if (outcome.kind === 'rejected') throw outcome.error
        const issuedAtMs = options.clock.nowMs()
        return {
          value: outcome.accessToken,
          ath: accessTokenHash(outcome.accessToken),
          scopes: outcome.scopes ?? request.scopes,
          issuedAtMs,
          expiresAtMs: issuedAtMs + outcome.expiresInSeconds * 1000,
          dpopJkt: request.dpopKey.jkt
        }
      }
    }
  }
}

async function send (options: TokenClientOptions, url: string, proof: string, body: string): Promise<{ status: number, headers: { get: (name: string) => string | null }, text: string }> {
  try {
    const response = await options.fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        dpop: proof
      },
      body,
      signal: AbortSignal.timeout(options.timeoutMs)
    })
    return { status: response.status, headers: response.headers, text: await response.text() }
  } catch (error) {
    throw new BrokerError('BROKER_IDP_UNREACHABLE', `HelseID token endpoint unreachable (${networkErrorCode(error)})`, { cause: error })
  }
}
