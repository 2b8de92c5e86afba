// One proxied call: token, fresh DPoP proof, upstream request, and the one-retry rules of RFC 9449.

import type { Readable } from 'node:stream'
import { EventEmitter } from 'node:events'
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.ts'
import type { ApiConfig } from '../config/config.ts'
import type { BrokerMetrics } from '../admin/metrics.ts'
import type { NonceStore } from '../helseid/dpop-nonces.ts'
import type { AccessToken, TokenRequest } from '../helseid/token-client.ts'
import type { TokenContext, TokenService } from '../tokens/token-service.ts'
import { BrokerError } from '../errors.ts'
import { toUpstreamError } from './upstream.ts'

/**
 * The caller's hang-up as undici's `signal`: an EventEmitter that emits 'abort' (far cheaper than an
 * AbortController per request), with `aborted` set first so that a call not yet started never starts.
 */
export class CallerAbort extends EventEmitter {
  aborted = false

  abort (): void {
    if (this.aborted) return
    this.aborted = true
    this.emit('abort')
  }
}

/** A request ready to go upstream. */
export interface ForwardRequest {
  readonly context: TokenContext
  readonly tokenRequest: TokenRequest
  readonly api: ApiConfig
  readonly method: string
  readonly url: URL
  readonly htu: string
  /** Caller headers after hygiene (see forward-headers.ts). */
  readonly headers: Readonly<Record<string, string | string[]>>
  /** A Buffer can be sent again on a retry; a stream cannot. */
  readonly body: Buffer | Readable | undefined
  readonly signal?: AbortSignal | CallerAbort
}

/** What comes back to the caller as it is. */
export interface ForwardResponse {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: Dispatcher.ResponseData['body']
}

export interface ForwarderOptions {
  readonly tokens: TokenService
  readonly nonces: NonceStore
  readonly clock: Clock
  readonly metrics: BrokerMetrics
  readonly agentFor: (api: ApiConfig) => Dispatcher
  /**
   * True while other calls are in flight. A call alone signs its proof at once; with others waiting,
   * the signature goes to libuv's thread pool so that the event loop keeps serving them meanwhile.
   * Without it, every proof is signed on the thread pool.
   */
  readonly isBusy?: () => boolean
}

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

/** Forwards one call; throws BrokerError for failures of its own (token, unreachable, timeout). */
export type Forwarder = (request: ForwardRequest) => Promise<ForwardResponse>

/** Creates the forwarder. */
export function createForwarder (options: ForwarderOptions): Forwarder {
  const { tokens, nonces, clock, metrics } = options
  return async function forward (request) {
    const isReplayable = !(request.body !== undefined && !Buffer.isBuffer(request.body))
    let token = await tokens.getToken(request.context, request.tokenRequest)
    let hasRetriedNonce = false
    let hasRetriedToken = false
    for (;;) {
      const response = await send(request, token)
      if (response.statusCode !== 401 || !isReplayable) return response
      const challenge = parseDpopChallenge(response.headers['www-authenticate'])
      if (challenge === 'use_dpop_nonce' && !hasRetriedNonce && typeof response.headers['dpop-nonce'] === 'string') {
        // RFC 9449 §9: the nonce was stored by send(); answer the challenge once.
        hasRetriedNonce = true
        await response.body.dump()
        continue
      }
      if (challenge === 'invalid_token') {
        tokens.invalidate(request.tokenRequest, token)
        if (!hasRetriedToken && idempotentMethods.has(request.method)) {
          hasRetriedToken = true
          await response.body.dump()
          token = await tokens.getToken(request.context, request.tokenRequest)
          continue
        }
      }
      return response
    }
  }

  async function send (request: ForwardRequest, token: AccessToken): Promise<ForwardResponse> {
    // The caller may have gone while the token was fetched or a retry prepared: then nothing goes upstream.
    if (isAborted(request.signal)) throw callerGone()
    const origin = request.url.origin
    const nonce = nonces.get(origin)
    const claims = nonce === undefined
      ? { htm: request.method, htu: request.htu, ath: token.ath }
      : { htm: request.method, htu: request.htu, ath: token.ath, nonce }
    const dpopKey = request.tokenRequest.dpopKey
    // A thread hop costs a wake-up on each side: worth it only when other calls can use the event loop meanwhile.
    const proof = options.isBusy?.() === false ? dpopKey.proof(claims, clock.nowMs()) : await dpopKey.signProof(claims, clock.nowMs())
    if (isAborted(request.signal)) throw callerGone()
    const headers: Record<string, string | string[]> = {
      ...request.headers,
      ...request.api.headers,
      authorization: `DPoP ${token.value}`,
      dpop: proof
    }
    const startedAt = process.hrtime.bigint()
    let response: Dispatcher.ResponseData
    try {
      response = await options.agentFor(request.api).request({
        origin,
        path: `${request.url.pathname}${request.url.search}`,
        method: request.method as Dispatcher.HttpMethod,
        headers,
        body: request.body ?? null,
        ...(request.signal === undefined ? {} : { signal: request.signal })
      })
    } catch (error) {
      const bodyError = request.body === undefined || Buffer.isBuffer(request.body) ? null : request.body.errored
      throw toUpstreamError(bodyError ?? error, request.api)
    }
    metrics.upstreamDuration.observe(
      { api: request.api.name, status: String(response.statusCode) },
      Number(process.hrtime.bigint() - startedAt) / 1e9)
    const newNonce = response.headers['dpop-nonce']
    if (typeof newNonce === 'string' && newNonce !== '') nonces.set(origin, newNonce)
    return { statusCode: response.statusCode, headers: response.headers, body: response.body }
  }
}

/** A function, not a property test, so that the check after an await is not narrowed away. */
function isAborted (signal: AbortSignal | CallerAbort | undefined): boolean {
  return signal?.aborted === true
}

function callerGone (): BrokerError {
  return new BrokerError('BROKER_BAD_REQUEST', 'the caller closed the connection before the request was forwarded')
}

/** The `error` of a DPoP challenge in WWW-Authenticate, if any. */
export function parseDpopChallenge (value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(', ') : value ?? ''
  const match = /(?:^|[\s,])DPoP\b[^]*?\berror="([^"]*)"/i.exec(text)
  return match?.[1]
}
