// What the proxy learns about a request as it goes (tenant, API, caller, upstream headers), for the
// request log line, metrics and the audit log, without decorating Fastify.

import type { IncomingMessage } from 'node:http'
import type { Caller } from '../security/caller-auth.ts'
import type { ProxyPolicy } from './proxy-policy.ts'

/** Filled in by the proxy route as it learns each part. */
export interface RequestContext {
  tenant?: string
  api?: string
  caller?: Caller
  /** The policy the request started under. */
  policy?: ProxyPolicy
  upstreamHeaders?: Readonly<Record<string, string | string[] | undefined>>
}

const contexts = new WeakMap<IncomingMessage, RequestContext>()

/** The context of a raw request, created on first use; it vanishes with the request. */
export function requestContext (raw: IncomingMessage): RequestContext {
  let context = contexts.get(raw)
  if (context === undefined) {
    context = {}
    contexts.set(raw, context)
  }
  return context
}
