// The proxy listener's one route: /{tenant}/{api}/{path} → the API, with token and proof added,
// after the caller, its permissions, the allowlists and the limits have let it through.

import type { IncomingMessage } from 'node:http'
import { EventEmitter } from 'node:events'
import { Readable, Transform } from 'node:stream'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { BrokerError } from '../errors.ts'
import { maskPath } from '../logging.ts'
import type { Caller, CallerAuthenticator } from '../security/caller-auth.ts'
import type { ConcurrencyLimit } from '../security/concurrency-limit.ts'
import type { RateLimiter } from '../security/rate-limiter.ts'
import type { RouteMatcher } from '../security/route-allowlist.ts'
import type { ProxyPolicy } from './proxy-policy.ts'
import type { Forwarder } from './forwarder.ts'
import { toCallerHeaders, toUpstreamHeaders } from './forward-headers.ts'
import { requestContext } from './request-labels.ts'
import { parseProxyTarget, toUpstreamUrl } from './target-url.ts'

export interface ProxyRoutesOptions {
  /** The policy in force; read once per request, so a reload never changes a request half-way. */
  readonly policy: () => ProxyPolicy
  readonly forward: Forwarder
  readonly rateLimiter: RateLimiter
  readonly upstreamSlots: ConcurrencyLimit
  /** Bodies up to this size are buffered so that a DPoP nonce or invalid_token retry can resend them; larger ones stream. */
  readonly replayBufferBytes?: number
}

const proxiedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
// Repeated wrong secrets from one address are slowed down before they can cost much scrypt time.
const failedAuthLimit = { requestsPerSecond: 5, burst: 20 }
const challenge = 'Bearer realm="helseid-broker", Basic realm="helseid-broker", charset="UTF-8"'

/** Mounts the guards and the catch-all proxy route. */
export const proxyRoutes: FastifyPluginAsync<ProxyRoutesOptions> = async (app, options) => {
  const replayBufferBytes = options.replayBufferBytes ?? 64 * 1024
  // Bodies are not parsed: they stay in the raw request and go upstream unchanged.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  app.addHook('onRequest', async request => {
    const raw = request.raw
    // HTTP/0.9 (`GET /x` without a version) and a textual `HTTP/2.0` request line would otherwise be proxied as HTTP/1.1.
    if (raw.httpVersionMajor !== 1) throw new BrokerError('BROKER_BAD_REQUEST', 'only HTTP/1.0 and HTTP/1.1 requests are served')
    // RFC 9112 §3.2: more than one Host is a 400. Node keeps only the first, so the Host guard would see half the request.
    if ((raw.headersDistinct.host?.length ?? 0) > 1) throw new BrokerError('BROKER_BAD_REQUEST', 'the request has more than one Host header')
    const policy = options.policy()
    const context = requestContext(raw)
    context.policy = policy
    const remoteAddress = request.socket.remoteAddress
    policy.guard(request.headers, remoteAddress, request.socket.localPort)
    let rateKey = `address:${remoteAddress ?? ''}`
    let rateLimit = policy.limits.rateLimit
    if (policy.authenticate !== undefined) {
      const caller = await authenticate(policy.authenticate, options.rateLimiter, request)
      context.caller = caller
      rateKey = `caller:${caller.name}`
      rateLimit = caller.config.rateLimit ?? rateLimit
    }
    const verdict = options.rateLimiter(rateKey, rateLimit)
    if (!verdict.isAllowed) {
      throw new BrokerError('BROKER_RATE_LIMITED', `more than ${rateLimit.requestsPerSecond} requests per second (burst ${rateLimit.burst})`, { headers: { 'retry-after': String(verdict.retryAfterSeconds) } })
    }
  })

  app.route({
    method: [...proxiedMethods],
    url: '/*',
    schema: { hide: true },
    handler: async (request, reply) => {
      const context = requestContext(request.raw)
      const policy = context.policy ?? options.policy()
      const target = parseProxyTarget(request.raw.url ?? '')
      const tenant = policy.tenants.get(target.tenant)
      if (tenant === undefined) throw new BrokerError('BROKER_TENANT_NOT_FOUND', `no tenant named "${safeName(target.tenant)}" is configured`)
      const api = tenant.apis.get(target.api)
      if (api === undefined) throw new BrokerError('BROKER_API_NOT_FOUND', `tenant "${target.tenant}" has no API named "${safeName(target.api)}"`)
      context.tenant = target.tenant
      context.api = target.api
      const caller = context.caller
      if (caller !== undefined && !caller.mayUse(target.tenant, target.api)) {
        throw new BrokerError('BROKER_CALLER_FORBIDDEN', `caller "${caller.name}" may not use ${target.tenant}/${target.api}`)
      }
      const apiMatcher = policy.apiMatchers.get(target.api)
      if (!isAllowed(apiMatcher, request.method, target.path) || !isAllowed(caller?.matcher, request.method, target.path)) {
        throw new BrokerError('BROKER_ROUTE_NOT_ALLOWED', `${request.method} ${maskPath(target.path)} is not in the allowlist`)
      }
      const { url, htu } = toUpstreamUrl(api.config.url, target)

      const body = await readBody(request.raw, Math.min(replayBufferBytes, policy.limits.maxBodyBytes), policy.limits.maxBodyBytes)
      const headers = toUpstreamHeaders(request.headers)
      if (body !== undefined && !Buffer.isBuffer(body) && request.headers['content-length'] !== undefined) {
        headers['content-length'] = request.headers['content-length']
      }
      // A caller that is gone already (it hung up during a slow first authentication, or the parser refused
      // its body right after the headers) gets no answer, and its 'close' has fired: the listener below would
      // never release the slot. Nothing goes upstream for it.
      const connection = request.raw.socket
      if (reply.raw.destroyed || connection.destroyed || !connection.writable) {
        throw new BrokerError('BROKER_BAD_REQUEST', 'the caller closed the connection before the request was forwarded')
      }
      if (!options.upstreamSlots.tryAcquire()) {
        throw new BrokerError('BROKER_OVERLOADED', `${policy.limits.maxConcurrentUpstream} upstream calls are in flight already`, { headers: { 'retry-after': '1' } })
      }
      let isReleased = false
      const release = (): void => { if (!isReleased) { isReleased = true; options.upstreamSlots.release() } }
      // undici takes an EventEmitter that emits 'abort' as its signal: far cheaper than an AbortController per request
      const abort = new EventEmitter()
      reply.raw.once('close', () => {
        release()
        if (!reply.raw.writableFinished) abort.emit('abort')
      })
      try {
        const response = await options.forward({
          context: { tenant: target.tenant, api: target.api },
          tokenRequest: api.tokenRequest,
          api: api.config,
          method: request.method,
          url,
          htu,
          headers,
          body,
          signal: abort
        })
        context.upstreamHeaders = response.headers
        reply.code(response.statusCode).headers(toCallerHeaders(response.headers))
        return await reply.send(request.method === 'HEAD' ? undefined : response.body)
      } catch (error) {
        release()
        throw error
      }
    }
  })
}

async function authenticate (authenticator: CallerAuthenticator, rateLimiter: RateLimiter, request: FastifyRequest): Promise<Caller> {
  const failureKey = `failed-auth:${request.socket.remoteAddress ?? ''}`
  // An address that keeps presenting wrong secrets is answered before any scrypt work is spent on it.
  const ahead = rateLimiter(failureKey, failedAuthLimit, true)
  if (!ahead.isAllowed) {
    throw new BrokerError('BROKER_RATE_LIMITED', 'too many failed caller authentications', { headers: { 'retry-after': String(ahead.retryAfterSeconds) } })
  }
  try {
    return await authenticator(request.headers.authorization)
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error
    const verdict = rateLimiter(failureKey, failedAuthLimit)
    if (!verdict.isAllowed) {
      throw new BrokerError('BROKER_RATE_LIMITED', 'too many failed caller authentications', { headers: { 'retry-after': String(verdict.retryAfterSeconds) } })
    }
    throw new BrokerError(error.code, error.message, { headers: { 'www-authenticate': challenge } })
  }
}

/** No rules let everything through; HEAD is GET without a body, so a rule for GET covers it too. */
function isAllowed (matcher: RouteMatcher | undefined, method: string, path: string): boolean {
  return matcher === undefined || matcher(method, path) || (method === 'HEAD' && matcher('GET', path))
}

/** A name from the caller's path, fit for a message that may be logged: identifier-shaped names are masked. */
function safeName (name: string): string {
  return maskPath(`/${name}`).slice(1)
}

/** Buffers small bodies (known length within the limit); streams the rest, cut off past maxBytes; undefined when there is none. */
async function readBody (raw: IncomingMessage, replayLimitBytes: number, maxBytes: number): Promise<Buffer | Readable | undefined> {
  const lengthHeader = raw.headers['content-length']
  const hasChunked = raw.headers['transfer-encoding'] !== undefined
  if (lengthHeader === undefined && !hasChunked) return undefined
  const length = lengthHeader === undefined ? Number.NaN : Number(lengthHeader)
  if (length === 0) return undefined
  if (length > maxBytes) throw tooLarge(maxBytes)
  // Read up to the replay limit first, chunked or not: a small body goes upstream whole (and can be
  // resent); nothing partial leaves before the limit is passed.
  const iterator: AsyncIterator<Buffer> = raw[Symbol.asyncIterator]()
  const head: Buffer[] = []
  let total = 0
  for (;;) {
    const next = await iterator.next()
    if (next.done === true) return Buffer.concat(head)
    head.push(next.value)
    total += next.value.length
    if (total > maxBytes) throw tooLarge(maxBytes)
    if (total > replayLimitBytes) break
  }
  let streamed = 0
  const counter = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      streamed += chunk.length
      callback(streamed > maxBytes ? tooLarge(maxBytes) : null, chunk)
    }
  })
  // The forwarder reads the error from `errored`; without a listener an early error would crash the process.
  counter.on('error', () => {})
  const source = Readable.from((async function * () {
    yield * head
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value
  })())
  source.on('error', error => counter.destroy(error))
  return source.pipe(counter)
}

function tooLarge (maxBytes: number): BrokerError {
  return new BrokerError('BROKER_BODY_TOO_LARGE', `the request body is larger than limits.maxBodyBytes (${maxBytes} bytes)`)
}
