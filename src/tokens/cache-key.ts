// The fields that decide whether a cached token may be reused.

import type { TokenRequest } from '../helseid/token-client.ts'

/** Client, client key, DPoP key, scopes (order-free) and organisation: equal keys may share a token. */
export function toCacheKey (request: TokenRequest): string {
  return [
    request.clientId,
    request.key.kid,
    request.dpopKey.jkt,
    [...request.scopes].sort().join(' '),
    request.organization.parent ?? '',
    request.organization.child ?? ''
  ].join('\u0000')
}
