// The proxy listener's one route: /{tenant}/{api}/{path} → the API, with token and proof added.

import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import type { FastifyPluginAsync } from 'fastify'
import { BrokerError } from '../errors.ts'
import type { TenantRuntime } from '../tenants.ts'
import type { Forwarder } from './forwarder.ts'
import { toCallerHeaders, toUpstreamHeaders } from './forward-headers.ts'
import { parseProxyTarget, toUpstreamUrl } from './target-url.ts'
import { requestLabels } from './request-labels.ts'
import { maskPath } from '../logging.ts'

export interface ProxyRoutesOptions {
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  readonly forward: Forwarder
  /** Bodies up to this size are buffered so that a DPoP nonce or invalid_token retry can resend them; larger ones stream. */
  readonly replayBufferBytes?: number
}

const proxiedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** Mounts the catch-all proxy route. */
export const proxyRoutes: FastifyPluginAsync<ProxyRoutesOptions> = async (app, options) => {
  const replayBufferBytes = options.replayBufferBytes ?? 64 * 1024
  // Bodies are not parsed: they stay in the raw request and go upstream unchanged.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  app.route({
    method: [...proxiedMethods],
    url: '/*',
    schema: { hide: true },
    handler: async (request, reply) => {
      const target = parseProxyTarget(request.raw.url ?? '')
      const tenant = options.tenants.get(target.tenant)
      if (tenant === undefined) throw new BrokerError('BROKER_TENANT_NOT_FOUND', `no tenant named "${safeName(target.tenant)}" is configured`)
      const api = tenant.apis.get(target.api)
      if (api === undefined) throw new BrokerError('BROKER_API_NOT_FOUND', `tenant "${target.tenant}" has no API named "${safeName(target.api)}"`)
      const { url, htu } = toUpstreamUrl(api.config.url, target)
      requestLabels.set(request.raw, { tenant: target.tenant, api: target.api })

      const body = await readBody(request.raw, replayBufferBytes)
      const headers = toUpstreamHeaders(request.headers)
      if (body !== undefined && !Buffer.isBuffer(body) && request.headers['content-length'] !== undefined) {
        headers['content-length'] = request.headers['content-length']
      }
      const abort = new AbortController()
      reply.raw.once('close', () => { if (!reply.raw.writableFinished) abort.abort() })

      const response = await options.forward({
        context: { tenant: target.tenant, api: target.api },
        tokenRequest: api.tokenRequest,
        api: api.config,
        method: request.method,
        url,
        htu,
        headers,
        body,
        signal: abort.signal
      })
      reply.code(response.statusCode).headers(toCallerHeaders(response.headers))
      return await reply.send(request.method === 'HEAD' ? undefined : response.body)
    }
  })
}

/** A name from the caller's path, fit for a message that may be logged: identifier-shaped names are masked. */
function safeName (name: string): string {
  return maskPath(`/${name}`).slice(1)
}

/** Buffers small bodies (known length within the limit); streams the rest; undefined when there is none. */
async function readBody (raw: IncomingMessage, limitBytes: number): Promise<Buffer | Readable | undefined> {
  const lengthHeader = raw.headers['content-length']
  const hasChunked = raw.headers['transfer-encoding'] !== undefined
  if (lengthHeader === undefined && !hasChunked) return undefined
  const length = lengthHeader === undefined ? Number.NaN : Number(lengthHeader)
  if (length === 0) return undefined
  if (!hasChunked && length <= limitBytes) {
    const chunks: Buffer[] = []
    for await (const chunk of raw) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  }
  return raw
}
