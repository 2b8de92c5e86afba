// The HelseID Selvbetjening client-secret API (helseid-protocol.md §6): list a client's keys with their expiry, register a new one.

import type { JWK } from 'jose'
import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import { BrokerError } from '../errors.ts'
import { createNonceStore, type NonceStore } from '../helseid/dpop-nonces.ts'
import type { DpopKey } from '../helseid/dpop-key.ts'
import type { FetchLike } from '../helseid/fetch-like.ts'
import type { AccessToken, TokenRequest } from '../helseid/token-client.ts'
import { networkErrorCode } from '../http/network-error.ts'
import type { ClientKey } from '../keys/client-key.ts'
import type { TenantRuntime } from '../tenants.ts'
import type { TokenService } from '../tokens/token-service.ts'
import {
  SelvbetjeningError, parseClientSecretList, parseProblem, parseRegisteredClientSecret,
  type ClientSecret, type RegisteredClientSecret
} from './client-secrets.ts'

/** The scope of a token for the client-secret API; the client's registration must include it. */
export const selvbetjeningScope = 'nhn:selvbetjening/client'
/** The `api` label of Selvbetjening tokens in the token cache, logs and metrics. */
export const selvbetjeningApiName = 'selvbetjening'

/** Who calls: a client, the key it authenticates with, and a DPoP key (a tenant's runtime has all three). */
export interface SelvbetjeningCaller {
  /** For logs and metrics only. */
  readonly tenant: string
  readonly clientId: string
  /** The key that signs the client assertion: the current, working key. */
  readonly key: ClientKey
  readonly dpopKey: DpopKey
}

export interface SelvbetjeningClientOptions {
  /** e.g. https://api.selvbetjening.nhn.no, without a trailing slash. */
  readonly baseUrl: string
  /** The broker's token service: Selvbetjening tokens share its cache, single-flight and retries. */
  readonly tokens: TokenService
  readonly fetch: FetchLike
  readonly clock: Clock
  readonly timeoutMs: number
  /** The API's DPoP nonces; default a store of its own. */
  readonly nonces?: NonceStore
  readonly logger?: Logger
}

/** Calls throw BrokerError: BROKER_IDP_* when no token could be had, SelvbetjeningError (BROKER_SELVBETJENING_FAILED) for the API. */
export interface SelvbetjeningClient {
  readonly baseUrl: string
  /** `GET /v1/client-secret`: every key registered for the caller's client, with its expiry. */
  readonly listClientSecrets: (caller: SelvbetjeningCaller) => Promise<readonly ClientSecret[]>
  /**
   * `POST /v1/client-secret`: registers `publicJwk` as an additional key of the caller's client, authenticated with the
   * caller's current key; on HTTP 400 the JWK is sent once more as a JSON string literal (§6.1). @throws TypeError for a private JWK.
   */
  readonly registerClientSecret: (caller: SelvbetjeningCaller, publicJwk: JWK) => Promise<RegisteredClientSecret>
}

const privateJwkMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

/** A tenant as a Selvbetjening caller: its client id, client key and DPoP key (pass `key` to act with another key of the client). */
export function selvbetjeningCallerOf (tenant: TenantRuntime, key: ClientKey = tenant.credentials.key): SelvbetjeningCaller {
  return { tenant: tenant.name, clientId: tenant.credentials.clientId, key, dpopKey: tenant.dpopKey }
}

/** The token request for Selvbetjening: no organisation numbers, since the API acts on the client itself. */
export function selvbetjeningTokenRequest (caller: SelvbetjeningCaller): TokenRequest {
  return { clientId: caller.clientId, key: caller.key, organization: {}, scopes: [selvbetjeningScope], dpopKey: caller.dpopKey }
}

/** Creates the client for one Selvbetjening base URL. */
export function createSelvbetjeningClient (options: SelvbetjeningClientOptions): SelvbetjeningClient {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v1/client-secret`
  const nonces = options.nonces ?? createNonceStore()
  const origin = new URL(url).origin

  /** One call with a DPoP token; answers a use_dpop_nonce challenge once, and an invalid_token once with a new token. */
  const call = async (caller: SelvbetjeningCaller, method: 'GET' | 'POST', body?: string): Promise<{ status: number, text: string }> => {
    const context = { tenant: caller.tenant, api: selvbetjeningApiName }
    const request = selvbetjeningTokenRequest(caller)
    let token = await options.tokens.getToken(context, request)
    let hasRetriedNonce = false
    let hasRetriedToken = false
    for (;;) {
      const response = await send(caller, method, token, body)
      if (response.status !== 401) return response
      const challenge = dpopChallengeError(response.headers.get('www-authenticate'))
      if (challenge === 'use_dpop_nonce' && !hasRetriedNonce && response.hasNewNonce) {
        hasRetriedNonce = true
        continue
      }
      if (challenge === 'invalid_token' && !hasRetriedToken) {
        // A 401 means the request was not acted on, so even the POST may be sent again.
        hasRetriedToken = true
        options.tokens.invalidate(request, token)
        token = await options.tokens.getToken(context, request)
        continue
      }
      return response
    }
  }

  const send = async (caller: SelvbetjeningCaller, method: string, token: AccessToken, body: string | undefined): Promise<{ status: number, text: string, headers: { get: (name: string) => string | null }, hasNewNonce: boolean }> => {
    const nonce = nonces.get(origin)
    const proof = caller.dpopKey.proof(nonce === undefined ? { htm: method, htu: url, ath: token.ath } : { htm: method, htu: url, ath: token.ath, nonce }, options.clock.nowMs())
    const headers: Record<string, string> = { authorization: `DPoP ${token.value}`, dpop: proof, accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    try {
      const response = await options.fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(options.timeoutMs)
      })
      const text = await response.text()
      const newNonce = response.headers.get('dpop-nonce')
      const hasNewNonce = newNonce !== null && newNonce !== '' && newNonce !== nonce
      if (newNonce !== null && newNonce !== '') nonces.set(origin, newNonce)
      return { status: response.status, text, headers: response.headers, hasNewNonce }
    } catch (error) {
      throw new SelvbetjeningError(`Selvbetjening ${url} unreachable (${networkErrorCode(error)})`, { cause: error })
    }
  }

  return {
    baseUrl: options.baseUrl,
    async listClientSecrets (caller) {
      const response = await call(caller, 'GET')
      if (response.status !== 200) throw failure('GET', response)
      return parseClientSecretList(response.text)
    },
    async registerClientSecret (caller, publicJwk) {
      if (privateJwkMembers.some(member => member in publicJwk)) throw new TypeError('registerClientSecret takes a public JWK; this one holds private members')
      const objectBody = JSON.stringify(publicJwk)
      let response = await call(caller, 'POST', objectBody)
      if (response.status === 400) {
        // §6.1: maintained NHN samples send the JWK as a JSON string literal; try that form once.
        options.logger?.info({ tenant: caller.tenant, status: response.status }, 'selvbetjening refused the jwk object; sending it as a json string')
        response = await call(caller, 'POST', JSON.stringify(objectBody))
      }
      if (response.status < 200 || response.status > 299) throw failure('POST', response)
      return parseRegisteredClientSecret(response.text)
    }
  }
}

function failure (method: string, response: { status: number, text: string }): BrokerError {
  const problem = parseProblem(response.text)
  const said = problem === undefined ? '' : `: ${[problem.title, problem.detail].filter(part => part !== undefined).join(' - ')}`
  return new SelvbetjeningError(`Selvbetjening ${method} /v1/client-secret answered HTTP ${response.status}${said}`, {
    httpStatus: response.status,
    ...(problem === undefined ? {} : { problem })
  })
}

/** The `error` of a DPoP challenge in WWW-Authenticate, if any. */
function dpopChallengeError (value: string | null): string | undefined {
  return /(?:^|[\s,])DPoP\b[^]*?\berror="([^"]*)"/i.exec(value ?? '')?.[1]
}
