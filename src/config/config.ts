// The broker's parsed configuration: deeply readonly, units in names, paths absolute.

export type HelseIdEnvironment = 'prod' | 'test' | 'custom'

/** A host and port to listen on. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** One allowlist rule: `GET /api/v3/restricted-access/person/*`. */
export interface RouteRule {
  /** Upper-case method, or `*` for any. */
  readonly method: string
  /** Path below the API base URL; `*` matches one segment, a final `**` any number (also none). */
  readonly pattern: string
  /** The rule as written, for messages. */
  readonly text: string
}

/** A token bucket: sustained rate and burst size. */
export interface RateLimitConfig {
  readonly requestsPerSecond: number
  readonly burst: number
}

/** How a caller proves who it is; the secret itself never lives in the config file. */
export type CallerSecretConfig =
  | { readonly kind: 'hash', readonly hash: string }
  | { readonly kind: 'file', readonly file: string }

/** A program allowed to use the proxy listener. */
export interface CallerConfig {
  readonly name: string
  readonly secret: CallerSecretConfig
  /** Tenants it may act for; `'*'` for all. */
  readonly tenants: readonly string[] | '*'
  /** APIs it may use; undefined for all of each tenant's APIs. */
  readonly apis?: readonly string[]
  /** Caller-level allowlist; empty for none (the API's rules still apply). */
  readonly allow: readonly RouteRule[]
  /** Overrides limits.rateLimit for this caller. */
  readonly rateLimit?: RateLimitConfig
}

/** Protective limits on the proxy listener. */
export interface LimitsConfig {
  readonly maxBodyBytes: number
  readonly maxHeaderBytes: number
  /** Time allowed to receive a whole request (slow senders are cut off). */
  readonly requestTimeoutMs: number
  /** How long an idle keep-alive connection is kept. */
  readonly idleTimeoutMs: number
  /** Upstream calls in flight at once, across all tenants; more are refused with 503. */
  readonly maxConcurrentUpstream: number
  /** Per caller (per client address when no callers are configured). */
  readonly rateLimit: RateLimitConfig
}

/** One upstream API the broker can proxy to. */
export interface ApiConfig {
  readonly name: string
  /** Base URL without a trailing slash, e.g. `https://api.persontjenesten.nhn.no`. */
  readonly url: string
  /** Scopes requested for this API's tokens (one API per token, as NHN asks). */
  readonly scopes: readonly string[]
  /** Static headers added to every upstream call. */
  readonly headers: Readonly<Record<string, string>>
  /** How long to wait for the upstream's response headers, and between body chunks. */
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  /** API-wide allowlist; empty for none. */
  readonly allow: readonly RouteRule[]
}

/** Organisation numbers sent in the client assertion. */
export interface OrganizationConfig {
  /** Parent (legal entity); set only for multi-tenant clients. */
  readonly parent?: string
  /** Child unit (underenhet). */
  readonly child?: string
}

/** One tenant: a client key, its organisation and the APIs it may use. */
export interface TenantConfig {
  readonly name: string
  /** Absolute path of the Selvbetjening download (extracted JSON) or private JWK file. */
  readonly clientFile: string
  /** Client id; required when the client file does not name one (plain JWK files). */
  readonly clientId?: string
  readonly organization: OrganizationConfig
  readonly apis: readonly string[]
}

/** Key expiry monitoring and rotation through the Selvbetjening API. */
export interface KeysConfig {
  /** Warn (log line, /readyz detail, `keys status`) when a client key has fewer days than this left. */
  readonly warnDays: number
  /** How often `serve` reads each client key's expiry from the Selvbetjening API (also once at start). */
  readonly expiryCheckHours: number
  /** `serve` rotates a client key by itself when it has fewer than `rotateDays` left; off unless the admin opts in. */
  readonly autoRotate: boolean
  /** With `autoRotate`: rotate when fewer days than this are left (helseid-protocol.md §6.2 suggests 60). */
  readonly rotateDays: number
}

export interface BrokerConfig {
  /** Absolute path of the file this came from, or `(built-in)` for the demo. */
  readonly source: string
  readonly helseid: {
    readonly environment: HelseIdEnvironment
    /** Issuer without a trailing slash. */
    readonly issuer: string
    readonly selvbetjeningUrl: string
    readonly timeoutMs: number
  }
  readonly listen: {
    readonly proxy: ListenAddress
    readonly admin: ListenAddress
    /** Host names (besides loopback names and the listen hosts) that callers may put in the Host header. */
    readonly hostnames: readonly string[]
  }
  /** Undefined: no caller authentication, and only loopback clients are served. */
  readonly callers?: Readonly<Record<string, CallerConfig>>
  readonly limits: LimitsConfig
  readonly browser: {
    /** Origins (scheme://host[:port]) whose browser requests are let through; none by default. */
    readonly allowedOrigins: readonly string[]
  }
  readonly audit: {
    /** Absolute path of the audit file, `-` for stdout; undefined for no audit log. */
    readonly file?: string
  }
  readonly egress: {
    readonly proxy?: string
    /** Absolute path of a PEM bundle of extra CA certificates trusted for outbound TLS (a TLS-inspecting proxy's CA). */
    readonly caFile?: string
  }
  readonly apis: Readonly<Record<string, ApiConfig>>
  readonly tenants: Readonly<Record<string, TenantConfig>>
  readonly keys: KeysConfig
  readonly logging: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  }
}
