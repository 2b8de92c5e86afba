// A HelseID Selvbetjening API on loopback (GET/POST /v1/client-secret) that verifies DPoP-bound tokens like a resource server.

import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { createRemoteJWKSet, type JWK, type JWTPayload } from 'jose'
import { systemClock, type Clock } from '../clock.ts'
import type { FakeAuthority, RegisteredClient } from './fake-authority.ts'
import { listenOrigin } from '../http/urls.ts'
import { readPublicJwk, thumbprintOf } from './public-jwk.ts'
import { createReplayCache } from './replay-cache.ts'
import { authorizeResourceRequest, type ResourceAuthContext } from './resource-auth.ts'

/** The scope a Selvbetjening token must carry (helseid-protocol.md §6.1). */
export const selvbetjeningClientScope = 'nhn:selvbetjening/client'

/** One entry of `GET /v1/client-secret`, as the API sends it. */
export interface ClientSecretEntry {
  readonly expiration: string
  readonly kid: string
  readonly jwkThumbprint: string
  readonly origin: 'Api' | 'Gui'
  readonly publicJwk: null
}

/** One request as the server received it. */
export interface SelvbetjeningRequest {
  readonly method: string
  readonly path: string
  readonly body: string
  readonly contentType: string | undefined
  /** 'ok', or why it was refused, e.g. 'invalid_token:ath mismatch', 'use_dpop_nonce', 'bad_request:...'. */
  readonly outcome: string
  /** The client_id claim of an accepted token. */
  readonly clientId?: string
  readonly tokenClaims?: JWTPayload
  readonly proofClaims?: JWTPayload
}

export interface FakeSelvbetjeningOptions {
  /** Issues the tokens trusted here and holds each client's registered public keys. */
  readonly authority: FakeAuthority
  /** Required token audience; default 'nhn:selvbetjening'. */
  readonly audience?: string
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 0 (any free port). */
  readonly port?: number
  /** Default false; when true a proof without the current nonce gets 401 use_dpop_nonce and a DPoP-Nonce header. */
  readonly requireNonce?: boolean
  readonly clock?: Clock
}

/** A running fake Selvbetjening API. */
export interface FakeSelvbetjening {
  /** 'http://127.0.0.1:<port>'; the base URL (`helseid.selvbetjeningUrl`). */
  readonly origin: string
  readonly received: readonly SelvbetjeningRequest[]
  /** What `GET /v1/client-secret` answers for this client now. */
  secrets (clientId: string): readonly ClientSecretEntry[]
  /** Sets a registered key's expiry (ISO 8601). @throws TypeError when the client has no key with this kid. */
  setExpiration (clientId: string, kid: string, isoDate: string): void
  /** Drops a key from the client's registration at the authority (the end of a rotation). @throws TypeError for an unknown kid or the last key. */
  retireKey (clientId: string, kid: string): void
  /** 'ok'; 'unavailable' → 503 problem details; 'malformed' → 200 with a body of the wrong shape (after authentication). */
  setMode (mode: 'ok' | 'unavailable' | 'malformed'): void
  /**
   * 'immediate' (default): a registered key is valid at the authority at once. 'held': Selvbetjening lists a newly
   * registered key, but the authority refuses it until `propagate()`, as when HelseID has not picked it up yet.
   */
  setPropagation (propagation: 'immediate' | 'held'): void
  /** Hands the held keys to the authority. */
  propagate (): void
  /** Replaces the DPoP nonce demanded when `requireNonce` is on. */
  rotateNonce (): void
  close (): Promise<void>
}

interface RequestState {
  outcome: string
  clientId?: string
  tokenClaims?: JWTPayload
  proofClaims?: JWTPayload
}

const secretsPath = '/v1/client-secret'

/** Starts the fake on loopback. Keys registered at the authority before the first request expire two years after it is first seen. */
export async function startFakeSelvbetjening (options: FakeSelvbetjeningOptions): Promise<FakeSelvbetjening> {
  const { authority } = options
  const clock = options.clock ?? systemClock
  const host = options.host ?? '127.0.0.1'
  const received: SelvbetjeningRequest[] = []
  const states = new WeakMap<FastifyRequest, RequestState>()
  // Per `${clientId} ${kid}`: expiry and origin; a key without an entry gets one (Gui, two years) when first listed.
  const known = new Map<string, { expirationMs: number, origin: 'Api' | 'Gui' }>()
  let mode: 'ok' | 'unavailable' | 'malformed' = 'ok'
  let propagation: 'immediate' | 'held' = 'immediate'
  // Per client: keys registered here that the authority does not know yet.
  const held = new Map<string, JWK[]>()
  let nonce = randomBytes(24).toString('base64url')
  let origin = ''

  const context: ResourceAuthContext = {
    issuer: authority.issuer,
    audience: options.audience ?? 'nhn:selvbetjening',
    keys: createRemoteJWKSet(new URL(authority.jwksUri), { cooldownDuration: 0, cacheMaxAge: 0 }),
    clock,
    replay: createReplayCache(),
    requiredNonce: () => options.requireNonce === true ? nonce : undefined
  }

  const registrationOf = (clientId: string): RegisteredClient => {
    const client = authority.registeredClient(clientId)
    if (client === undefined) throw new TypeError(`the authority has no client ${clientId}`)
    return client
  }
  const secrets = (clientId: string): ClientSecretEntry[] => {
    const client = authority.registeredClient(clientId)
    if (client === undefined) return []
    return [...client.publicJwks, ...held.get(clientId) ?? []].map(jwk => {
      const jwkThumbprint = thumbprintOf(jwk)
      const kid = typeof jwk.kid === 'string' ? jwk.kid : jwkThumbprint
      const id = `${clientId} ${kid}`
      let entry = known.get(id)
      if (entry === undefined) {
        entry = { expirationMs: twoYearsAfter(clock.nowMs()), origin: 'Gui' }
        known.set(id, entry)
      }
      return { expiration: new Date(entry.expirationMs).toISOString(), kid, jwkThumbprint, origin: entry.origin, publicJwk: null }
    })
  }
  const record = (request: FastifyRequest, state: Partial<RequestState>): void => {
    states.set(request, { outcome: 'ok', ...states.get(request), ...state })
  }

  const app = Fastify({ logger: false, forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  // Bodies stay raw text: the POST route parses them itself, and `received` shows exactly what arrived.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })

  app.addHook('onSend', async (request, reply, payload) => {
    const state = states.get(request)
    received.push({
      method: request.method,
      path: request.url.split('?')[0] ?? '',
      body: typeof request.body === 'string' ? request.body : '',
      contentType: request.headers['content-type'],
      outcome: state?.outcome ?? (reply.statusCode < 400 ? 'ok' : `http_${reply.statusCode}`),
      ...(state?.clientId === undefined ? {} : { clientId: state.clientId }),
      ...(state?.tokenClaims === undefined ? {} : { tokenClaims: state.tokenClaims }),
      ...(state?.proofClaims === undefined ? {} : { proofClaims: state.proofClaims })
    })
    return payload
  })

  app.setNotFoundHandler(async (request, reply) => {
    record(request, { outcome: 'not_found' })
    return await sendProblem(reply, 404, 'Not Found', 'no such route')
  })

  app.addHook('preHandler', async (request, reply) => {
    const result = await authorizeResourceRequest(context, {
      method: request.method,
      url: origin + (request.url.split('?')[0] ?? ''),
      authorization: request.headers.authorization,
      dpop: request.headers.dpop,
      requiredScope: selvbetjeningClientScope,
      requireOrganization: false
    })
    const { tokenClaims, proofClaims } = result
    const clientId = typeof tokenClaims?.client_id === 'string' ? tokenClaims.client_id : undefined
    record(request, {
      outcome: result.ok ? 'ok' : result.reason,
      ...(clientId === undefined ? {} : { clientId }),
      ...(tokenClaims === undefined ? {} : { tokenClaims }),
      ...(proofClaims === undefined ? {} : { proofClaims })
    })
    if (result.ok && clientId === undefined) {
      record(request, { outcome: 'invalid_token:no client_id claim' })
      return await reply.code(401).header('www-authenticate', 'DPoP error="invalid_token"').send()
    }
    if (result.ok && mode === 'unavailable') {
      record(request, { outcome: 'unavailable' })
      return await sendProblem(reply, 503, 'Service Unavailable', 'Selvbetjening is down for maintenance')
    }
    if (result.ok) return
    reply.code(result.status)
    if (result.wwwAuthenticate !== undefined) reply.header('www-authenticate', result.wwwAuthenticate)
    if (result.sendNonce === true) reply.header('dpop-nonce', nonce)
    await reply.send()
  })

  app.get(secretsPath, async request => {
    if (mode === 'malformed') return { secrets: 'not a list' }
    return secrets(states.get(request)?.clientId ?? '')
  })

  app.post(secretsPath, async (request, reply) => {
    const clientId = states.get(request)?.clientId ?? ''
    const refuse = async (status: number, title: string, detail: string): Promise<FastifyReply> => {
      record(request, { outcome: `${status === 409 ? 'conflict' : 'bad_request'}:${detail}` })
      return await sendProblem(reply, status, title, detail)
    }
    if (request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
      record(request, { outcome: 'unsupported_media_type' })
      return await sendProblem(reply, 415, 'Unsupported Media Type', 'send the public JWK as application/json')
    }
    const parsed = readPublicJwk(typeof request.body === 'string' ? request.body : '')
    if (typeof parsed === 'string') return await refuse(400, 'Bad Request', parsed)
    const client = registrationOf(clientId)
    const jwkThumbprint = thumbprintOf(parsed)
    const kid = typeof parsed.kid === 'string' ? parsed.kid : jwkThumbprint
    if (secrets(clientId).some(entry => entry.kid === kid || entry.jwkThumbprint === jwkThumbprint)) {
      return await refuse(409, 'Conflict', `a key with kid ${kid} or the same thumbprint is already registered`)
    }
    if (mode === 'malformed') return { expires: 'soon' }
    const expirationMs = twoYearsAfter(clock.nowMs())
    // The old keys stay valid alongside the new one until retired.
    if (propagation === 'held') held.set(clientId, [...held.get(clientId) ?? [], { ...parsed, kid }])
    else authority.registerClient({ ...client, publicJwks: [...client.publicJwks, { ...parsed, kid }] })
    known.set(`${clientId} ${kid}`, { expirationMs, origin: 'Api' })
    return { expiration: new Date(expirationMs).toISOString() }
  })

  await app.listen({ host, port: options.port ?? 0 })
  origin = listenOrigin(app.server.address(), host)

  return {
    origin,
    received,
    secrets,
    setExpiration (clientId, kid, isoDate) {
      const expirationMs = Date.parse(isoDate)
      if (Number.isNaN(expirationMs)) throw new TypeError(`not a date: ${isoDate}`)
      const entry = secrets(clientId).find(secret => secret.kid === kid)
      if (entry === undefined) throw new TypeError(`client ${clientId} has no key ${kid}`)
      known.set(`${clientId} ${kid}`, { expirationMs, origin: entry.origin })
    },
    retireKey (clientId, kid) {
      const client = registrationOf(clientId)
      const remaining = client.publicJwks.filter(jwk => (typeof jwk.kid === 'string' ? jwk.kid : thumbprintOf(jwk)) !== kid)
      if (remaining.length === client.publicJwks.length) throw new TypeError(`client ${clientId} has no key ${kid}`)
      authority.registerClient({ ...client, publicJwks: remaining })
      known.delete(`${clientId} ${kid}`)
    },
    setMode (newMode) { mode = newMode },
    setPropagation (newPropagation) { propagation = newPropagation },
    propagate () {
      for (const [clientId, keys] of held) {
        const client = registrationOf(clientId)
        authority.registerClient({ ...client, publicJwks: [...client.publicJwks, ...keys] })
      }
      held.clear()
    },
    rotateNonce () { nonce = randomBytes(24).toString('base64url') },
    async close () { await app.close() }
  }
}

function twoYearsAfter (ms: number): number {
  const date = new Date(ms)
  date.setUTCFullYear(date.getUTCFullYear() + 2)
  return date.getTime()
}

async function sendProblem (reply: FastifyReply, status: number, title: string, detail: string): Promise<FastifyReply> {
  return await reply.code(status).type('application/problem+json; charset=utf-8')
    .send({ type: `https://tools.ietf.org/html/rfc9110#section-15.${status >= 500 ? 6 : 5}.${status % 100 + 1}`, title, status, detail, instance: secretsPath })
}
