// The proxy listener's request handler: /{tenant}/{api}/{path} → the API, with token and proof added,
// after the caller, its permissions, the allowlists and the limits have let it through.
//
// Plain node:http, no framework: this is the hot path, and a router, hooks and a reply object per
// request cost more than every check below together (see bench/RESULTS.md). Every refusal is a
// BrokerError answered as problem+json; nothing here throws past the handler.

import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { ApiConfig } from '../config/config.ts'
import { BrokerError } from '../errors.ts'
import { answerError, logErrorAnswer, writeProblem } from '../http/problem.ts'
import { maskPath } from '../logging.ts'
import type { Caller, CallerAuthenticator } from '../security/caller-auth.ts'
import type { ConcurrencyLimit } from '../security/concurrency-limit.ts'
import type { RateLimiter } from '../security/rate-limiter.ts'
import type { RouteMatcher } from '../security/route-allowlist.ts'
import type { ProxyPolicy } from './proxy-policy.ts'
import { CallerAbort, type Forwarder, type ForwardResponse } from './forwarder.ts'
import { toCallerHeaders, toUpstreamHeaders } from './forward-headers.ts'
import { parseProxyTarget, toUpstreamUrl } from './target-url.ts'
import { toUpstreamBodyError } from './upstream.ts'

/** One finished request, as the request line, the metrics and the audit log see it. */
export interface CompletedRequest {
  readonly requestId: string
  readonly request: IncomingMessage
  readonly tenant: string | undefined
  readonly api: string | undefined
  readonly caller: string | undefined
  /** The status sent; 499 when the caller went away before any answer. */
  readonly status: number
  /** False when the answer did not reach the caller whole (the caller went away, or the upstream's body broke off). */
  readonly isComplete: boolean
  readonly durationMs: number
  /** The broker's own error code, when the broker answered. */
  readonly code: string | undefined
  readonly upstreamHeaders: Readonly<Record<string, string | string[] | undefined>> | undefined
}

export interface ProxyHandlerOptions {
  /** The policy in force; read once per request, so a reload never changes a request half-way. */
  readonly policy: () => ProxyPolicy
  readonly forward: Forwarder
  readonly rateLimiter: RateLimiter
  readonly upstreamSlots: ConcurrencyLimit
  /** Logger for refusals and failures (with redaction). */
  readonly logger: Logger
  /** Called once per request when its response is done or the caller has gone. */
  readonly onComplete: (completed: CompletedRequest) => void
  /** True once the broker drains: new requests on open connections are refused. */
  readonly isDraining: () => boolean
  /** Bodies up to this size are buffered so that a DPoP nonce or invalid_token retry can resend them; larger ones stream. */
  readonly replayBufferBytes?: number
  /** Upstream answers with a Content-Length up to this size are read whole and sent in one write; larger ones stream. */
  readonly smallResponseBytes?: number
}

const proxiedMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
// Repeated wrong secrets from one address are slowed down before they can cost much scrypt time.
const failedAuthLimit = { requestsPerSecond: 5, burst: 20 }
const challenge = 'Bearer realm="helseid-broker", Basic realm="helseid-broker", charset="UTF-8"'

/** What the handler learns about a request as it goes. */
interface RequestState {
  readonly id: string
  readonly startedAt: number
  tenant?: string
  api?: string
  caller?: Caller
  upstreamHeaders?: Readonly<Record<string, string | string[] | undefined>>
  /** The broker's error code, when the broker answered. */
  code?: string
  /** Cancels the upstream call when the caller goes away. */
  readonly abort: CallerAbort
}

/** Creates the request listener of the proxy server. */
export function createProxyHandler (options: ProxyHandlerOptions): (request: IncomingMessage, response: ServerResponse) => void {
  const replayBufferBytes = options.replayBufferBytes ?? 64 * 1024
  const smallResponseBytes = options.smallResponseBytes ?? 64 * 1024

  return (request, response) => {
    const state: RequestState = { id: randomUUID(), startedAt: performance.now(), abort: new CallerAbort() }
    // One listener does the after-work: cancel the upstream call if the caller left early, and record the request.
    response.once('close', () => {
      const isComplete = response.writableFinished
      if (!isComplete) state.abort.abort()
      try {
        options.onComplete({
          requestId: state.id,
          request,
          tenant: state.tenant,
          api: state.api,
          caller: state.caller?.name,
          status: response.headersSent ? response.statusCode : 499,
          isComplete,
          durationMs: Math.round((performance.now() - state.startedAt) * 10) / 10,
          code: state.code,
          upstreamHeaders: state.upstreamHeaders
        })
      } catch (error) {
        options.logger.error({ reqId: state.id, err: error }, 'recording the request failed')
      }
    })
    handle(request, response, state).catch(error => { fail(response, state, error) })
  }

  async function handle (request: IncomingMessage, response: ServerResponse, state: RequestState): Promise<void> {
    if (options.isDraining()) {
      throw new BrokerError('BROKER_SHUTTING_DOWN', 'the broker is shutting down; send the request again', { headers: { 'retry-after': '1', connection: 'close' } })
    }
    // HTTP/0.9 (`GET /x` without a version) and a textual `HTTP/2.0` request line would otherwise be proxied as HTTP/1.1.
    if (request.httpVersionMajor !== 1) throw new BrokerError('BROKER_BAD_REQUEST', 'only HTTP/1.0 and HTTP/1.1 requests are served')
    // RFC 9112 §3.2: more than one Host is a 400. Node keeps only the first, so the Host guard would see half the request.
    if (countHeader(request.rawHeaders, 'host') > 1) throw new BrokerError('BROKER_BAD_REQUEST', 'the request has more than one Host header')
    const policy = options.policy()
    const socket = request.socket
    const remoteAddress = socket.remoteAddress
    policy.guard(request.headers, remoteAddress, socket.localPort)
    let rateKey = `address:${remoteAddress ?? ''}`
    let rateLimit = policy.limits.rateLimit
    if (policy.authenticate !== undefined) {
      const caller = await authenticate(policy.authenticate, options.rateLimiter, request)
      state.caller = caller
      rateKey = `caller:${caller.name}`
      rateLimit = caller.config.rateLimit ?? rateLimit
    }
    const verdict = options.rateLimiter(rateKey, rateLimit)
    if (!verdict.isAllowed) {
      throw new BrokerError('BROKER_RATE_LIMITED', `more than ${rateLimit.requestsPerSecond} requests per second (burst ${rateLimit.burst})`, { headers: { 'retry-after': String(verdict.retryAfterSeconds) } })
    }
    const method = request.method ?? ''
    if (!proxiedMethods.has(method)) throw new BrokerError('BROKER_METHOD_NOT_ALLOWED', `method ${method.slice(0, 32)} is not proxied`)

    const target = parseProxyTarget(request.url ?? '')
    const tenant = policy.tenants.get(target.tenant)
    if (tenant === undefined) throw new BrokerError('BROKER_TENANT_NOT_FOUND', `no tenant named "${safeName(target.tenant)}" is configured`)
    const api = tenant.apis.get(target.api)
    if (api === undefined) throw new BrokerError('BROKER_API_NOT_FOUND', `tenant "${target.tenant}" has no API named "${safeName(target.api)}"`)
    state.tenant = target.tenant
    state.api = target.api
    const caller = state.caller
    if (caller !== undefined && !caller.mayUse(target.tenant, target.api)) {
      throw new BrokerError('BROKER_CALLER_FORBIDDEN', `caller "${caller.name}" may not use ${target.tenant}/${target.api}`)
    }
    const apiMatcher = policy.apiMatchers.get(target.api)
    if (!isAllowed(apiMatcher, method, target.path) || !isAllowed(caller?.matcher, method, target.path)) {
      throw new BrokerError('BROKER_ROUTE_NOT_ALLOWED', `${method} ${maskPath(target.path)} is not in the allowlist`)
    }
    const { url, htu } = toUpstreamUrl(api.config.url, target)

    const body = await readBody(request, Math.min(replayBufferBytes, policy.limits.maxBodyBytes), policy.limits.maxBodyBytes)
    const headers = toUpstreamHeaders(request.headers)
    if (body !== undefined && !Buffer.isBuffer(body) && request.headers['content-length'] !== undefined) {
      headers['content-length'] = request.headers['content-length']
    }
    // A caller that is gone already (it hung up during a slow first authentication, or the parser refused
    // its body right after the headers) gets no answer. Nothing goes upstream for it.
    if (response.destroyed || socket.destroyed || !socket.writable) {
      throw new BrokerError('BROKER_BAD_REQUEST', 'the caller closed the connection before the request was forwarded')
    }
    if (!options.upstreamSlots.tryAcquire()) {
      throw new BrokerError('BROKER_OVERLOADED', `${policy.limits.maxConcurrentUpstream} upstream calls are in flight already`, { headers: { 'retry-after': '1' } })
    }
    // The slot is held until the upstream exchange has settled (answered, failed or cancelled), not merely
    // until the caller hangs up: a call already on its way still counts against the cap.
    try {
      const upstream = await options.forward({
        context: { tenant: target.tenant, api: target.api, requestId: state.id },
        tokenRequest: api.tokenRequest,
        api: api.config,
        method,
        url,
        htu,
        headers,
        body,
        signal: state.abort
      })
      state.upstreamHeaders = upstream.headers
      await answer(method, upstream, response, api.config)
    } finally {
      options.upstreamSlots.release()
    }
  }

  /** Sends the upstream's answer: small bodies whole, in one write with the headers; larger ones streamed. */
  async function answer (method: string, upstream: ForwardResponse, response: ServerResponse, api: ApiConfig): Promise<void> {
    const headers = toCallerHeaders(upstream.headers)
    const length = Number(upstream.headers['content-length'] ?? Number.NaN)
    if (method !== 'HEAD' && length <= smallResponseBytes) {
      let whole: Buffer
      try {
        whole = Buffer.from(await upstream.body.arrayBuffer())
      } catch (error) {
        // Nothing has been sent yet: a broken small answer becomes a clean 502/504, never a short body.
        throw toUpstreamBodyError(error, api, upstream.statusCode)
      }
      response.writeHead(upstream.statusCode, headers)
      response.end(whole)
      return
    }
    try {
      response.writeHead(upstream.statusCode, headers)
    } catch (error) {
      // A status or header Node will not send: the pooled connection must not wait for a reader.
      upstream.body.destroy()
      throw error
    }
    if (method === 'HEAD') {
      response.end()
      await upstream.body.dump()
      return
    }
    await pipeline(upstream.body, response)
  }

  function fail (response: ServerResponse, state: RequestState, error: unknown): void {
    try {
      if (response.headersSent || response.destroyed) {
        // The caller went away, or the upstream's answer broke off half-way: either way there is nobody
        // to answer, and the caller sees a cut connection, never a mixed body. The code says which.
        options.logger.info({ reqId: state.id, code: errorCode(error) }, 'response not completed')
        response.destroy()
        return
      }
      const answer = answerError(error, state.id)
      state.code = answer.problem.code
      logErrorAnswer(options.logger, answer, { reqId: state.id })
      writeProblem(response, answer.problem, answer.headers)
    } catch (failure) {
      options.logger.error({ reqId: state.id, err: failure }, 'answering a failed request failed')
      response.destroy()
    }
  }
}

/** The code of an error (a broker code, or Node's and undici's), never its message. */
function errorCode (error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code)
  return error instanceof Error ? error.name : 'unknown'
}

/** How many times a header occurs in the raw list (names in any case). */
function countHeader (rawHeaders: readonly string[], name: string): number {
  let count = 0
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const header = rawHeaders[index]
    if (header !== undefined && header.length === name.length && header.toLowerCase() === name) count++
  }
  return count
}

async function authenticate (authenticator: CallerAuthenticator, rateLimiter: RateLimiter, request: IncomingMessage): Promise<Caller> {
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
