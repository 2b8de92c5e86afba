// Tenant and API of a proxied request, for the request log line and metrics, without decorating Fastify.

import type { IncomingMessage } from 'node:http'

/** Labels the proxy route sets once it knows them. */
export interface RequestLabels {
  readonly tenant: string
  readonly api: string
}

/** Keyed by the raw request, so entries vanish with it. */
export const requestLabels = new WeakMap<IncomingMessage, RequestLabels>()
