// Parsing HelseID's token endpoint answer (pure): a DPoP token, a nonce request, or a coded error.

import { BrokerError, IdpRejectedError } from '../errors.ts'

/** What one token endpoint response means. */
export type TokenResponseOutcome =
  | { readonly kind: 'token', readonly accessToken: string, readonly expiresInSeconds: number, readonly scopes?: readonly string[] }
  | { readonly kind: 'nonce-required' }
  | { readonly kind: 'rejected', readonly error: BrokerError }

const oauthErrorPattern = /^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,64}$/

/** Classifies a token endpoint response; response bodies are never copied into messages. */
export function parseTokenResponse (status: number, text: string): TokenResponseOutcome {
  const body = parseJsonObject(text)
  if (status >= 500) {
    return { kind: 'rejected', error: new BrokerError('BROKER_IDP_UNREACHABLE', `HelseID token endpoint answered HTTP ${status}`) }
  }
  if (status !== 200) {
    const oauthError = typeof body?.error === 'string' && oauthErrorPattern.test(body.error) ? body.error : undefined
    if (oauthError === 'use_dpop_nonce') return { kind: 'nonce-required' }
    if (oauthError === undefined) {
      return { kind: 'rejected', error: new BrokerError('BROKER_IDP_BAD_RESPONSE', `HelseID token endpoint answered HTTP ${status} without an OAuth error`) }
    }
    return { kind: 'rejected', error: new IdpRejectedError(oauthError, `HelseID refused the token request: ${oauthError}`) }
  }
  if (body === undefined) {
    return { kind: 'rejected', error: new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID token response is not a JSON object') }
  }
  const { access_token: accessToken, token_type: tokenType, expires_in: expiresIn, scope } = body
  if (typeof accessToken !== 'string' || accessToken === '') {
    return { kind: 'rejected', error: new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID token response has no access_token') }
  }
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'dpop') {
    return { kind: 'rejected', error: new BrokerError('BROKER_IDP_BAD_RESPONSE', `HelseID issued token_type ${JSON.stringify(tokenType)}, expected DPoP`) }
  }
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    return { kind: 'rejected', error: new BrokerError('BROKER_IDP_BAD_RESPONSE', 'HelseID token response has no positive expires_in') }
  }
  return typeof scope === 'string' && scope !== ''
    ? { kind: 'token', accessToken, expiresInSeconds: expiresIn, scopes: scope.split(' ').filter(s => s !== '') }
    : { kind: 'token', accessToken, expiresInSeconds: expiresIn }
}

function parseJsonObject (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}
