// The small part of oidc-provider (v9, no bundled types) that the acceptance suite uses.

declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** The provider configuration; see node_modules/oidc-provider/lib/helpers/defaults.js for every key. */
  export type Configuration = Readonly<Record<string, unknown>>

  /** A koa application that is an OpenID Provider. */
  export class Provider {
    constructor (issuer: string, configuration?: Configuration)
    readonly issuer: string
    /** A node:http request listener. */
    callback (): (request: IncomingMessage, response: ServerResponse) => void
    on (event: string, listener: (...args: unknown[]) => void): this
  }

  /** OAuth errors oidc-provider turns into error responses. */
  export const errors: {
    readonly InvalidClientAuth: new (detail?: string) => Error
    readonly InvalidTarget: new (detail?: string) => Error
  }

  export default Provider
}
