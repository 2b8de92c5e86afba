// The broker's parsed configuration: deeply readonly, units in names, paths absolute.

export type HelseIdEnvironment = 'prod' | 'test' | 'custom'

/** A host and port to listen on. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
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
  }
  readonly egress: {
    readonly proxy?: string
  }
  readonly apis: Readonly<Record<string, ApiConfig>>
  readonly tenants: Readonly<Record<string, TenantConfig>>
  readonly logging: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  }
}
