// HelseID's OpenID metadata: fetched once, cached, refreshed in the background, kept on refresh failure.

import { BrokerError } from '../errors.ts'
import type { Clock } from '../clock.ts'
import type { FetchLike } from './fetch-like.ts'
import { isAllowedUrl } from '../http/urls.ts'
import { networkErrorCode } from '../http/network-error.ts'

/** The metadata fields the broker relies on. */
export interface AuthorityMetadata {
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly jwksUri?: string
}

export interface DiscoveryOptions {
  readonly issuer: string
  readonly fetch: FetchLike
  readonly clock: Clock
  readonly timeoutMs: number
  /** How long a fetched document is trusted before it is fetched again (NHN's library: 24 h). */
  readonly maxAgeMs?: number
}

/** Cached discovery; `get` fetches on first use and whenever the document is older than maxAgeMs. */
export interface Discovery {
  readonly get: () => Promise<AuthorityMetadata>
  /** The last document fetched, if any; for readiness. */
  readonly current: () => AuthorityMetadata | undefined
  /** Why the last fetch failed, if it did and none has succeeded since; for readiness. */
  readonly lastError: () => string | undefined
}

/** Creates the discovery cache for one issuer. */
export function createDiscovery (options: DiscoveryOptions): Discovery {
  const maxAgeMs = options.maxAgeMs ?? 24 * 60 * 60 * 1000
  let cached: { metadata: AuthorityMetadata, fetchedAtMs: number } | undefined
  let inFlight: Promise<AuthorityMetadata> | undefined
  let lastError: string | undefined

  const refresh = (): Promise<AuthorityMetadata> => {
    inFlight ??= fetchMetadata(options)
      .then(metadata => {
        cached = { metadata, fetchedAtMs: options.clock.nowMs() }
        lastError = undefined
        return metadata
      }, (error: unknown) => {
        lastError = error instanceof Error ? error.message : 'discovery failed'
        throw error
      })
      .finally(() => { inFlight = undefined })
    return inFlight
  }

  return {
    async get () {
      if (cached === undefined) return await refresh()
      if (options.clock.nowMs() - cached.fetchedAtMs > maxAgeMs) {
        // Stale but usable: refresh in the background, keep serving the old document if it fails.
        refresh().catch(() => {})
      }
      return cached.metadata
    },
    current: () => cached?.metadata,
    lastError: () => lastError
  }
}

async function fetchMetadata (options: DiscoveryOptions): Promise<AuthorityMetadata> {
  const url = `${options.issuer}/.well-known/openid-configuration`
  let status: number
  let text: string
  try {
    const response = await options.fetch(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs)
    })
    status = response.status
    text = await response.text()
  } catch (error) {
    throw new BrokerError('BROKER_IDP_UNREACHABLE', `cannot fetch HelseID discovery from ${options.issuer} (${networkErrorCode(error)})`, { cause: error })
  }
  if (status !== 200) {
    throw new BrokerError(status >= 500 ? 'BROKER_IDP_UNREACHABLE' : 'BROKER_IDP_BAD_RESPONSE', `HelseID discovery answered HTTP ${status}`)
  }
  return parseMetadata(text, options.issuer)
}

/** Parses and checks a discovery document; the issuer must match exactly (OpenID Discovery §4.3). */
export function parseMetadata (text: string, expectedIssuer: string): AuthorityMetadata {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    throw new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID discovery is not JSON')
  }
  if (typeof document !== 'object' || document === null) {
    throw new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID discovery is not a JSON object')
  }
  const { issuer, token_endpoint: tokenEndpoint, jwks_uri: jwksUri } = document as Record<string, unknown>
  if (issuer !== expectedIssuer) {
    throw new BrokerError('BROKER_IDP_BAD_RESPONSE', `HelseID discovery names issuer ${JSON.stringify(issuer)}, expected ${expectedIssuer}`)
  }
  if (typeof tokenEndpoint !== 'string' || !isAllowedUrl(tokenEndpoint)) {
    throw new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID discovery has no usable token_endpoint')
  }
  return typeof jwksUri === 'string' ? { issuer, tokenEndpoint, jwksUri } : { issuer, tokenEndpoint }
}
