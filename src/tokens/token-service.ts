// Access tokens per (client, key, DPoP key, scopes, organisation): cached, refreshed ahead, single-flight.

import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { BrokerError, IdpRejectedError } from '../errors.ts'
import type { Clock } from '../clock.ts'
import type { BrokerMetrics } from '../admin/metrics.ts'
import type { AccessToken, TokenClient, TokenRequest } from '../helseid/token-client.ts'
import { toCacheKey } from './cache-key.ts'
import { backoffDelayMs, type RetryPolicy } from './retry.ts'

/** Who asked, for logs, metrics and /status; does not decide reuse. */
export interface TokenContext {
  readonly tenant: string
  readonly api: string
  /** The proxied request that asked: a fetch it starts logs it as `reqId` (requests that wait for that fetch log their own lines). Never a metric label or in /status. */
  readonly requestId?: string
}

/** A cached token as /status may show it: lifetimes and scopes, never the token. */
export interface CachedTokenInfo extends TokenContext {
  readonly scopes: readonly string[]
  readonly issuedAtMs: number
  readonly expiresAtMs: number
  readonly refreshAtMs: number
}

export interface TokenServiceOptions {
  readonly client: TokenClient
  readonly clock: Clock
  readonly logger: Logger
  readonly metrics: BrokerMetrics
  readonly maxEntries?: number
  readonly retry?: RetryPolicy
  /** After HelseID refuses a request (invalid_client, invalid_scope…), answer the same refusal for this long without asking again. */
  readonly rejectionCooldownMs?: number
  /** A token is not handed out when it has less than this left (it could expire in flight). */
  readonly minRemainingMs?: number
}

/** Hands out valid tokens; `getToken` throws BrokerError when none can be had. */
export interface TokenService {
  readonly getToken: (context: TokenContext, request: TokenRequest) => Promise<AccessToken>
  /** Drops `token` from the cache if it is still the cached one (the API called it invalid). */
  readonly invalidate: (request: TokenRequest, token: AccessToken) => void
  readonly snapshot: () => readonly CachedTokenInfo[]
}

interface Entry {
  readonly token: AccessToken
  readonly refreshAtMs: number
  readonly context: TokenContext
}

const defaultRetry: RetryPolicy = { attempts: 3, baseDelayMs: 250, maxDelayMs: 4000 }

/** Creates the token service. */
export function createTokenService (options: TokenServiceOptions): TokenService {
  const { clock, metrics, logger } = options
  const retry = options.retry ?? defaultRetry
  const cooldownMs = options.rejectionCooldownMs ?? 10_000
  const minRemainingMs = options.minRemainingMs ?? 5_000
  const cache = new LRUCache<string, Entry>({ max: options.maxEntries ?? 1000 })
  const inFlight = new Map<string, Promise<AccessToken>>()
  const rejections = new LRUCache<string, { error: BrokerError, untilMs: number }>({ max: options.maxEntries ?? 1000 })

  const fetchWithRetry = async (context: TokenContext, request: TokenRequest): Promise<AccessToken> => {
    const labels = labelsOf(context)
    // The request that started the fetch, so that its slow answer can be traced to this fetch.
    const fields = context.requestId === undefined ? labels : { ...labels, reqId: context.requestId }
    for (let attempt = 1; ; attempt++) {
      try {
        const token = await options.client.fetchToken(request)
        metrics.tokenFetches.inc({ ...labels, outcome: 'issued' })
        logger.info({ ...fields, expiresInSeconds: Math.round((token.expiresAtMs - token.issuedAtMs) / 1000) }, 'token fetched')
        return token
      } catch (error) {
        const isRetryable = error instanceof BrokerError && error.code === 'BROKER_IDP_UNREACHABLE'
        metrics.tokenFetches.inc({ ...labels, outcome: outcomeOf(error) })
        if (!isRetryable || attempt >= retry.attempts) {
          logger.error({ ...fields, code: codeOf(error), attempt, err: error }, 'token fetch failed')
          throw error
        }
        const delayMs = backoffDelayMs(retry, attempt)
        logger.warn({ ...fields, attempt, delayMs }, 'token fetch failed, retrying')
        await new Promise(resolve => setTimeout(resolve, delayMs))
      }
    }
  }

  const refresh = (key: string, context: TokenContext, request: TokenRequest): Promise<AccessToken> => {
    const running = inFlight.get(key)
    if (running !== undefined) return running
    const promise = fetchWithRetry(context, request)
      .then(token => {
        const lifetimeMs = token.expiresAtMs - token.issuedAtMs
        // Refresh ahead by max(30 s, 10 %), but never before half the lifetime has passed.
        const aheadMs = Math.min(Math.max(30_000, lifetimeMs / 10), lifetimeMs / 2)
        cache.set(key, { token, refreshAtMs: token.expiresAtMs - aheadMs, context: labelsOf(context) })
        rejections.delete(key)
        return token
      }, (error: unknown) => {
        if (error instanceof IdpRejectedError) rejections.set(key, { error, untilMs: clock.nowMs() + cooldownMs })
        throw error
      })
      .finally(() => inFlight.delete(key))
    inFlight.set(key, promise)
    return promise
  }

  return {
    async getToken (context, request) {
      const key = toCacheKey(request)
      const nowMs = clock.nowMs()
      const entry = cache.get(key)
      if (entry !== undefined && nowMs < entry.token.expiresAtMs - minRemainingMs) {
        if (nowMs >= entry.refreshAtMs && !inFlight.has(key)) {
          metrics.tokenCache.inc({ result: 'refresh_ahead' })
          // The current token stays in use; a failed refresh is logged and retried on the next call.
          refresh(key, context, request).catch(() => {})
        } else {
          metrics.tokenCache.inc({ result: 'hit' })
        }
        return entry.token
      }
      const rejection = rejections.get(key)
      if (rejection !== undefined && nowMs < rejection.untilMs) throw rejection.error
      metrics.tokenCache.inc({ result: inFlight.has(key) ? 'coalesced' : 'miss' })
      try {
        return await refresh(key, context, request)
      } catch (error) {
        if (error instanceof BrokerError) throw error
        throw new BrokerError('BROKER_INTERNAL', 'token fetch failed unexpectedly', { cause: error })
      }
    },
    invalidate (request, token) {
      const key = toCacheKey(request)
      if (cache.get(key)?.token === token) cache.delete(key)
    },
    snapshot () {
      const list: CachedTokenInfo[] = []
      for (const entry of cache.values()) {
        list.push({
          ...entry.context,
          scopes: entry.token.scopes,
          issuedAtMs: entry.token.issuedAtMs,
          expiresAtMs: entry.token.expiresAtMs,
          refreshAtMs: entry.refreshAtMs
        })
      }
      return list
    }
  }
}

function codeOf (error: unknown): string {
  return error instanceof BrokerError ? error.code : 'BROKER_INTERNAL'
}

function outcomeOf (error: unknown): string {
  if (error instanceof IdpRejectedError) return 'rejected'
  if (error instanceof BrokerError && error.code === 'BROKER_IDP_UNREACHABLE') return 'unreachable'
  if (error instanceof BrokerError && error.code === 'BROKER_IDP_BAD_RESPONSE') return 'bad_response'
  return 'error'
}

/** Tenant and API without the request id: what metric labels, the cache and /status may hold. */
function labelsOf (context: TokenContext): { readonly tenant: string, readonly api: string } {
  return { tenant: context.tenant, api: context.api }
}
