// The one catalogue of errors the broker produces itself: code, HTTP status and title.

/** Every code the broker can answer with; the README's error table is drift-tested against this. */
export const errorCatalogue = {
  BROKER_BAD_REQUEST: { status: 400, title: 'Bad request' },
  BROKER_CALLER_UNAUTHENTICATED: { status: 401, title: 'Caller not authenticated' },
  BROKER_CALLER_FORBIDDEN: { status: 403, title: 'Caller may not use this tenant or API' },
  BROKER_ROUTE_NOT_ALLOWED: { status: 403, title: 'Route not in the allowlist' },
  BROKER_HOST_NOT_ALLOWED: { status: 403, title: 'Host header not a local name of this broker' },
  BROKER_BROWSER_REFUSED: { status: 403, title: 'Request from a web page refused' },
  BROKER_CLIENT_NOT_LOCAL: { status: 403, title: 'Client not on this machine' },
  BROKER_REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time' },
  BROKER_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  BROKER_RELOAD_REFUSED: { status: 422, title: 'The new configuration was refused; the running one keeps serving' },
  BROKER_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  BROKER_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  BROKER_PATH_REJECTED: { status: 400, title: 'Request path rejected' },
  BROKER_NOT_FOUND: { status: 404, title: 'No such route' },
  BROKER_TENANT_NOT_FOUND: { status: 404, title: 'Unknown tenant' },
  BROKER_API_NOT_FOUND: { status: 404, title: 'Unknown API for this tenant' },
  BROKER_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  BROKER_IDP_REJECTED: { status: 502, title: 'HelseID refused the token request' },
  BROKER_IDP_BAD_RESPONSE: { status: 502, title: 'HelseID answered with something unusable' },
  BROKER_IDP_UNREACHABLE: { status: 503, title: 'HelseID unreachable and no valid cached token' },
  BROKER_UPSTREAM_UNREACHABLE: { status: 502, title: 'Upstream API unreachable' },
  BROKER_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream API timed out' },
  BROKER_OVERLOADED: { status: 503, title: 'Too many upstream calls in flight' },
  BROKER_SHUTTING_DOWN: { status: 503, title: 'Broker shutting down' },
  BROKER_SELVBETJENING_FAILED: { status: 502, title: 'The Selvbetjening API call failed' },
  BROKER_INTERNAL: { status: 500, title: 'Internal broker error' }
} as const satisfies Record<string, { readonly status: number, readonly title: string }>

export type ErrorCode = keyof typeof errorCatalogue

/** An expected operational failure: carries a catalogue code; its message never holds secrets or personal data. */
export class BrokerError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /** Extra, safe fields for the problem body (e.g. the OAuth error name). */
  readonly extra: Readonly<Record<string, string>>
  /** Response headers that belong to this refusal (Retry-After, WWW-Authenticate). */
  readonly headers: Readonly<Record<string, string>>

  constructor (code: ErrorCode, message: string, options?: ErrorOptions & { extra?: Record<string, string>, headers?: Record<string, string> }) {
    super(message, options)
    this.name = 'BrokerError'
    this.code = code
    this.statusCode = errorCatalogue[code].status
    this.extra = options?.extra ?? {}
    this.headers = options?.headers ?? {}
  }
}

/** HelseID answered the token request with an OAuth error; `oauthError` is the error name only. */
export class IdpRejectedError extends BrokerError {
  readonly oauthError: string
  constructor (oauthError: string, message: string, options?: ErrorOptions) {
    super('BROKER_IDP_REJECTED', message, { ...options, extra: { oauthError } })
    this.name = 'IdpRejectedError'
    this.oauthError = oauthError
  }
}

/** A configuration problem list; each entry is `path: what is wrong`. */
export class ConfigError extends Error {
  readonly issues: readonly string[]
  constructor (issues: readonly string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

/** Exit codes of the CLI (sysexits.h where one fits). */
export const exitCodes = { ok: 0, failure: 1, usage: 64, config: 78 } as const
