// A Persontjenesten v3 resource server on loopback that verifies DPoP-bound HelseID tokens as strictly as the real one.

import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyRequest } from 'fastify'
import { createRemoteJWKSet, type JWTPayload } from 'jose'
import { systemClock, type Clock } from '../clock.ts'
import { listenOrigin } from '../http/urls.ts'
import { sleepMs } from './loopback.ts'
import { registerPersontjenestenRoutes, type AccessTree } from './persontjenesten-routes.ts'
import { createReplayCache } from './replay-cache.ts'
import { authorizeResourceRequest, type ResourceAuthContext } from './resource-auth.ts'

/** How to start the resource server. */
export interface FakePersontjenestenOptions {
  /** The only token issuer trusted. */
  readonly issuer: string
  /** Where the issuer's signing keys are fetched from. */
  readonly jwksUri: string
  /** Required token audience; default 'nhn:hgd-persontjenesten-api'. */
  readonly audience?: string
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0 (any free port). */
  readonly port?: number
  /** Default false; when true a proof without the current nonce gets 401 use_dpop_nonce and a DPoP-Nonce header. */
  readonly requireNonce?: boolean
  /** Source of time for token and proof checks; default the system clock. */
  readonly clock?: Clock
  /** How long the issuer's JWKS is trusted before it is fetched again; default 10 minutes (0: every request, to see key rollovers at once). */
  readonly jwksCacheMaxAgeMs?: number
}

/** One request as the server received it. */
export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  /** Raw query string without '?'; '' when there is none. */
  readonly query: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The raw body text exactly as it arrived ('' when there was none). */
  readonly body: string
  readonly contentType: string | undefined
  /** 'ok', or why it was refused, e.g. 'invalid_token:ath mismatch', 'use_dpop_nonce', 'not_found:No person found'. */
  readonly outcome: 'ok' | string
  readonly tokenClaims?: JWTPayload
  readonly proofClaims?: JWTPayload
}

/** A running resource server. */
export interface FakePersontjenesten {
  /** 'http://127.0.0.1:<port>'. */
  readonly origin: string
  readonly received: readonly ReceivedRequest[]
  /** Delays every response by `ms` of real time before its headers are sent (for upstream-timeout tests). */
  setResponseDelayMs (ms: number): void
  /** Replaces the DPoP nonce demanded when `requireNonce` is on. */
  rotateNonce (): void
  /** Stops listening and drops open connections. */
  close (): Promise<void>
}

interface RequestState {
  outcome: string
  tokenClaims?: JWTPayload
  proofClaims?: JWTPayload
}

/** Starts the resource server on loopback; `/ping` is open, everything under /api/v3 needs a DPoP-bound token. */
export async function startFakePersontjenesten (options: FakePersontjenestenOptions): Promise<FakePersontjenesten> {
  const host = options.host ?? '127.0.0.1'
  const received: ReceivedRequest[] = []
  const states = new WeakMap<FastifyRequest, RequestState>()
  const closing = new AbortController()
  let responseDelayMs = 0
  let nonce = randomBytes(24).toString('base64url')
  let origin = ''

  const context: ResourceAuthContext = {
    issuer: options.issuer,
    audience: options.audience ?? 'nhn:hgd-persontjenesten-api',
    keys: createRemoteJWKSet(new URL(options.jwksUri), { cooldownDuration: 0, cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000 }),
    clock: options.clock ?? systemClock,
    replay: createReplayCache(),
    requiredNonce: () => options.requireNonce === true ? nonce : undefined
  }
  const recordOutcome = (request: FastifyRequest, outcome: string): void => {
    states.set(request, { ...states.get(request), outcome })
  }

  const app = Fastify({ logger: false, forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  // Bodies stay raw text: the routes parse forms themselves and `received` shows exactly what arrived.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })

  app.addHook('onSend', async (request, reply, payload) => {
    const queryIndex = request.url.indexOf('?')
    const state = states.get(request)
    received.push({
      method: request.method,
      path: queryIndex === -1 ? request.url : request.url.slice(0, queryIndex),
      query: queryIndex === -1 ? '' : request.url.slice(queryIndex + 1),
      headers: { ...request.headers },
      body: typeof request.body === 'string' ? request.body : '',
      contentType: request.headers['content-type'],
      outcome: state?.outcome ?? (reply.statusCode < 400 ? 'ok' : `http_${reply.statusCode}`),
      ...(state?.tokenClaims === undefined ? {} : { tokenClaims: state.tokenClaims }),
      ...(state?.proofClaims === undefined ? {} : { proofClaims: state.proofClaims })
    })
    await sleepMs(responseDelayMs, closing.signal)
    return payload
  })

  app.setNotFoundHandler(async (request, reply) => {
    recordOutcome(request, 'not_found:no such route')
    return await reply.code(404).type('application/problem+json; charset=utf-8')
      .send({ type: 'https://tools.ietf.org/html/rfc9110#section-15.5.5', title: 'Not Found', status: 404 })
  })

  app.get('/ping', async (_request, reply) => await reply.type('text/plain; charset=utf-8').send('Pong'))

  for (const access of ['full-access', 'restricted-access'] as const satisfies readonly AccessTree[]) {
    await app.register(async tree => {
      tree.addHook('preHandler', async (request, reply) => {
        const queryIndex = request.url.indexOf('?')
        const result = await authorizeResourceRequest(context, {
          method: request.method,
          url: origin + (queryIndex === -1 ? request.url : request.url.slice(0, queryIndex)),
          authorization: request.headers.authorization,
          dpop: request.headers.dpop,
          requiredScope: `nhn:hgd-persontjenesten-api/${access}`
        })
        const { tokenClaims, proofClaims } = result
        states.set(request, {
          outcome: result.ok ? 'ok' : result.reason,
          ...(tokenClaims === undefined ? {} : { tokenClaims }),
          ...(proofClaims === undefined ? {} : { proofClaims })
        })
        if (result.ok) return
        reply.code(result.status)
        if (result.wwwAuthenticate !== undefined) reply.header('www-authenticate', result.wwwAuthenticate)
        if (result.sendNonce === true) reply.header('dpop-nonce', nonce)
        await reply.send()
      })
      registerPersontjenestenRoutes(tree, access, recordOutcome)
    }, { prefix: `/api/v3/${access}` })
  }

  await app.listen({ host, port: options.port ?? 0 })
  origin = listenOrigin(app.server.address(), host)

  return {
    origin,
    received,
    setResponseDelayMs (ms) { responseDelayMs = ms },
    rotateNonce () { nonce = randomBytes(24).toString('base64url') },
    async close () {
      closing.abort()
      await app.close()
    }
  }
}
