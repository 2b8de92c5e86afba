// Acceptance: the broker's HelseID client against oidc-provider (a certified OpenID Provider we did not write),
// configured the way HelseID behaves: client_credentials only, private_key_jwt with aud = issuer and
// typ client-authentication+jwt, DPoP with a nonce always demanded, JWT access tokens bound with cnf.jkt.

import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose'
import { createDependencies, startBroker, type RunningBroker } from '../../src/app.ts'
import { defaultKeys, defaultLimits } from '../../src/config/defaults.ts'
import type { ApiConfig, BrokerConfig } from '../../src/config/config.ts'
import { startFakePersontjenesten, type FakePersontjenesten } from '../../src/demo/fake-persontjenesten.ts'
import type { ClientKey } from '../../src/keys/client-key.ts'
import { parseClientKey } from '../../src/keys/load-client-key.ts'
import type { TenantCredentials } from '../../src/keys/tenant-keys.ts'
import { captureLogs } from '../helpers/capture-logs.ts'

// oidc-provider prints notices on import (it calls Node 20 an unsupported runtime) and at start-up
// (the in-memory adapter); keep them out of the TAP stream, everything else still prints.
const silencedNotices: string[] = []
const originalConsole = { warn: console.warn, info: console.info }
const withoutProviderNotices = (print: (...args: unknown[]) => void) => (...args: unknown[]): void => {
  const [first] = args
  if (typeof first === 'string' && first.includes('oidc-provider ')) silencedNotices.push(first)
  else print(...args)
}
console.warn = withoutProviderNotices(originalConsole.warn)
console.info = withoutProviderNotices(originalConsole.info)
t.teardown(() => {
  console.warn = originalConsole.warn
  console.info = originalConsole.info
})
const { Provider, errors } = await import('oidc-provider')

const resource = 'nhn:hgd-persontjenesten-api'
const restrictedScope = `${resource}/restricted-access`
const fullScope = `${resource}/full-access`
const claimPrefix = 'helseid://claims/client/claims/'
const supplierClientId = 'acceptance-epj-supplier'
const supplierOrgnr = '999977773'
const staleClientId = 'acceptance-stale-key'
const signingKid = 'acceptance-es256'
const tokenPath = '/connect/token'
/** HelseID-approved algorithms (helseid-protocol.md §2.5), for client assertions and DPoP proofs alike. */
const helseIdAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']
const events = '/fjordvik/persontjenesten/api/v3/restricted-access/event/latest'

/** One POST to the token endpoint as it went over the wire, plus what oidc-provider saw of the assertion. */
interface TokenExchange {
  readonly proof: JWTPayload | undefined
  assertion?: { readonly header: Readonly<Record<string, unknown>>, readonly claims: Readonly<Record<string, unknown>> }
  status?: number
  nonceSent?: string
  body?: Readonly<Record<string, unknown>>
}

interface ClientRegistration {
  readonly clientId: string
  readonly publicJwk: JWK
  /** The scopes the client may ask for (HelseID: the client's API scopes in Selvbetjening). */
  readonly scope: string
}

interface Authority {
  readonly issuer: string
  readonly jwksUri: string
  readonly exchanges: readonly TokenExchange[]
}

interface Environment {
  readonly authority: Authority
  readonly persontjenesten: FakePersontjenesten
  readonly broker: RunningBroker
  readonly config: BrokerConfig
  readonly credentials: ReadonlyMap<string, TenantCredentials>
  readonly call: (path: string) => Promise<Response>
}

/** A loopback listener whose request handler is set once the issuer (which needs the port) is known. */
async function listenOnLoopback (t: Test): Promise<{ readonly origin: string, readonly setHandler: (handler: (request: IncomingMessage, response: ServerResponse) => void) => void }> {
  let handler = (_request: IncomingMessage, response: ServerResponse): void => { response.statusCode = 503; response.end() }
  const server: Server = createServer((request, response) => { handler(request, response) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, setHandler (next) { handler = next } }
}

/** A client key as the broker holds it: parsed from a Selvbetjening-shaped download. */
async function downloadedKey (clientId: string, authority: string): Promise<ClientKey> {
  const { privateKey } = await generateKeyPair('PS256', { modulusLength: 2048, extractable: true })
  const download = { clientId, authority, clientName: `${clientId} (acceptance)`, privateJwk: JSON.stringify(await exportJWK(privateKey)) }
  return await parseClientKey(download, `(acceptance: ${clientId}, in memory)`)
}

function member (value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined
}

/**
 * HelseID's organisation claims: the multi-tenant form `NO:ORGNR:<parent>[:<child>]` read from the
 * assertion's assertion_details (helseid-protocol.md §4), else the client's own organisation.
 */
function organizationClaims (assertion: unknown): Record<string, string> {
  const claims: Record<string, string> = { [`${claimPrefix}orgnr_supplier`]: supplierOrgnr }
  const details = typeof assertion === 'string' ? decodeJwt(assertion).assertion_details : undefined
  const identifier = member(member(member(details, 'practitioner_role'), 'organization'), 'identifier')
  const value = member(identifier, 'value')
  const match = member(identifier, 'system') === 'urn:oid:1.0.6523' && typeof value === 'string'
    ? /^NO:ORGNR:(\d{9})(?::(\d{9}))?$/.exec(value)
    : null
  claims[`${claimPrefix}orgnr_parent`] = match?.[1] ?? supplierOrgnr
  if (match?.[2] !== undefined) claims[`${claimPrefix}orgnr_child`] = match[2]
  return claims
}

/** Starts oidc-provider on `listener`, configured like HelseID, recording every token endpoint POST. */
async function startAuthority (t: Test, listener: Awaited<ReturnType<typeof listenOnLoopback>>, clients: readonly ClientRegistration[]): Promise<Authority> {
  const issuer = listener.origin
  const exchanges: TokenExchange[] = []
  const exchangeOf = new WeakMap<IncomingMessage, TokenExchange>()
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const signingJwk = { ...await exportJWK(privateKey), kid: signingKid, alg: 'ES256', use: 'sig' }

  const provider = new Provider(issuer, {
    clients: clients.map(client => ({
      client_id: client.clientId,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [client.publicJwk] },
      scope: client.scope,
      // Refuse a token request without a DPoP proof instead of issuing a bearer token.
      dpop_bound_access_tokens: true
    })),
    clientAuthMethods: ['private_key_jwt'],
    // Only an ES256 key is configured; without this every client fails validation (invalid_client_metadata).
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    responseTypes: [],
    jwks: { keys: [signingJwk] },
    routes: { token: tokenPath, jwks: '/.well-known/openid-configuration/jwks' },
    // Registered scopes: a client asking for one outside its own `scope` list gets invalid_scope.
    scopes: [restrictedScope, fullScope],
    enabledJWA: { clientAuthSigningAlgValues: helseIdAlgorithms, dPoPSigningAlgValues: helseIdAlgorithms },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      resourceIndicators: {
        enabled: true,
        // HelseID derives the audience from the scope; here every token is for Persontjenesten.
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: unknown) => {
          if (indicator !== resource) throw new errors.InvalidTarget()
          return {
            scope: `${restrictedScope} ${fullScope}`,
            audience: resource,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } }
          }
        }
      }
    },
    // oidc-provider accepts aud = issuer, token endpoint or endpoint URL; HelseID (since 2025) wants the
    // issuer only, and typ client-authentication+jwt. The hook runs after the signature is verified.
    assertJwtClientAuthClaimsAndHeader: (ctx: unknown, claims: Record<string, unknown>, header: Record<string, unknown>) => {
      const exchange = exchangeOf.get(member(ctx, 'req') as IncomingMessage)
      if (exchange !== undefined) exchange.assertion = { header, claims }
      if (header.typ !== 'client-authentication+jwt') throw new errors.InvalidClientAuth('typ must be client-authentication+jwt')
      if (claims.aud !== issuer) throw new errors.InvalidClientAuth('aud must be the issuer identifier')
    },
    extraTokenClaims: (ctx: unknown) => organizationClaims(member(member(member(ctx, 'oidc'), 'params'), 'client_assertion'))
  })
  // A 500 from oidc-provider means this set-up is wrong, not the broker: say so instead of a vague 502.
  provider.on('server_error', (_ctx, error) => { t.fail(`oidc-provider server_error: ${String(error)}`) })

  const handle = provider.callback()
  listener.setHandler((request, response) => {
    if (request.method === 'POST' && request.url?.split('?')[0] === tokenPath) record(request, response)
    handle(request, response)
  })

  function record (request: IncomingMessage, response: ServerResponse): void {
    const proof = request.headers.dpop
    const exchange: TokenExchange = { proof: typeof proof === 'string' ? decodeJwt(proof) : undefined }
    exchanges.push(exchange)
    exchangeOf.set(request, exchange)
    const chunks: Buffer[] = []
    const keep = (chunk: unknown): void => {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk))
    }
    const write = response.write as (...args: unknown[]) => boolean
    const end = response.end as (...args: unknown[]) => ServerResponse
    response.write = function (this: ServerResponse, ...args: unknown[]) { keep(args[0]); return write.apply(this, args) } as ServerResponse['write']
    response.end = function (this: ServerResponse, ...args: unknown[]) { keep(args[0]); return end.apply(this, args) } as ServerResponse['end']
    response.once('finish', () => {
      exchange.status = response.statusCode
      const nonce = response.getHeader('dpop-nonce')
      if (typeof nonce === 'string') exchange.nonceSent = nonce
      try {
        exchange.body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
      } catch { /* left undefined: the assertions on body say so */ }
    })
  }

  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>
  if (typeof discovery.jwks_uri !== 'string') throw new TypeError('oidc-provider discovery has no jwks_uri')
  return { issuer, jwksUri: discovery.jwks_uri, exchanges }
}

function apiConfig (name: string, url: string, scopes: readonly string[]): ApiConfig {
  return { name, url, scopes, headers: { 'api-version': '3' }, timeoutMs: 10_000, connectTimeoutMs: 2000, allow: [] }
}

/**
 * oidc-provider with two clients (the supplier, whose registered key is the broker's, and a client whose
 * registered key is another one under the same kid), a local Persontjenesten trusting it, and a broker
 * with tenant `fjordvik` (supplier, multi-tenant 999977774:999977775; APIs restricted and full access)
 * and tenant `stale` (the client with the mismatched key). Everything is closed at the end of `t`.
 */
async function startEnvironment (t: Test): Promise<Environment> {
  const listener = await listenOnLoopback(t)
  const issuer = listener.origin
  const [supplierKey, staleKey, { publicKey: otherKey }] = await Promise.all([
    downloadedKey(supplierClientId, issuer),
    downloadedKey(staleClientId, issuer),
    generateKeyPair('PS256', { modulusLength: 2048, extractable: true })
  ])
  const authority = await startAuthority(t, listener, [
    { clientId: supplierClientId, publicJwk: supplierKey.publicJwk, scope: restrictedScope },
    { clientId: staleClientId, publicJwk: { ...await exportJWK(otherKey), kid: staleKey.kid, alg: 'PS256', use: 'sig' }, scope: restrictedScope }
  ])

  const persontjenesten = await startFakePersontjenesten({ issuer: authority.issuer, jwksUri: authority.jwksUri, audience: resource })
  t.teardown(async () => { await persontjenesten.close() })

  const logs = captureLogs()
  const config: BrokerConfig = {
    source: '(acceptance: oidc-provider)',
    helseid: { environment: 'custom', issuer, selvbetjeningUrl: issuer, timeoutMs: 5000 },
    listen: { proxy: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, hostnames: [] },
    limits: defaultLimits,
    browser: { allowedOrigins: [] },
    audit: {},
    egress: {},
    apis: {
      persontjenesten: apiConfig('persontjenesten', persontjenesten.origin, [restrictedScope]),
      'persontjenesten-full': apiConfig('persontjenesten-full', persontjenesten.origin, [fullScope])
    },
    tenants: {
      fjordvik: { name: 'fjordvik', clientFile: supplierKey.file, organization: { parent: '999977774', child: '999977775' }, apis: ['persontjenesten', 'persontjenesten-full'] },
      stale: { name: 'stale', clientFile: staleKey.file, organization: {}, apis: ['persontjenesten'] }
    },
    keys: defaultKeys,
    logging: { level: 'trace' }
  }
  const credentials = new Map<string, TenantCredentials>([
    ['fjordvik', { tenant: 'fjordvik', clientId: supplierClientId, key: supplierKey }],
    ['stale', { tenant: 'stale', clientId: staleClientId, key: staleKey }]
  ])
  // No Selvbetjening here: key expiry checks would only add token requests to the exchanges.
  const broker = await startBroker(config, credentials, logs.logger, { retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 }, checkKeyExpiry: false })
  t.teardown(async () => { await broker.close() })
  return { authority, persontjenesten, broker, config, credentials, call: async path => await fetch(`${broker.proxyUrl}${path}`) }
}

function tokenOf (authorization: unknown): string {
  return String(authorization).replace(/^DPoP /, '')
}

t.test('a GET through the broker reaches Persontjenesten with a DPoP-bound JWT access token issued by oidc-provider', async t => {
  const env = await startEnvironment(t)

  const response = await env.call(events)

  t.equal(response.status, 200)
  t.equal(response.headers.get('helseid-broker-error'), null)
  t.match(await response.json(), { sequenceNumber: /^\d+$/ })
  t.equal(env.persontjenesten.received.length, 1)
  const [received] = env.persontjenesten.received
  t.equal(received?.outcome, 'ok', 'the resource server verified token, proof, binding, scope and orgnr')
  t.match(String(received?.headers.authorization), /^DPoP [\w-]+\.[\w-]+\.[\w-]+$/)
  const token = tokenOf(received?.headers.authorization)
  const issued = env.authority.exchanges.at(-1)
  t.equal(issued?.status, 200)
  t.equal(issued?.body?.token_type, 'DPoP', 'oidc-provider issued token_type DPoP')
  t.equal(issued?.body?.access_token, token, 'the token Persontjenesten saw is the one oidc-provider issued')
  t.match(decodeProtectedHeader(token), { typ: 'at+jwt', alg: 'ES256', kid: signingKid })

  const claims = received?.tokenClaims
  t.equal(claims?.iss, env.authority.issuer)
  t.equal(claims?.aud, resource)
  t.equal(claims?.client_id, supplierClientId)
  t.equal(claims?.scope, restrictedScope)
  t.equal(claims?.[`${claimPrefix}orgnr_parent`], '999977774', 'parent from the assertion_details the broker sent')
  t.equal(claims?.[`${claimPrefix}orgnr_child`], '999977775', 'child from the assertion_details the broker sent')
  const proofJkt = await calculateJwkThumbprint(decodeProtectedHeader(String(received?.headers.dpop)).jwk as JWK)
  t.equal(member(claims?.cnf, 'jkt'), proofJkt, 'cnf.jkt is the thumbprint of the key that signed the API proof')
  t.equal(proofJkt, env.broker.deps.tenants.get('fjordvik')?.dpopKey.jkt)
})

t.test('the DPoP nonce handshake with oidc-provider takes exactly one retry', async t => {
  const env = await startEnvironment(t)

  t.equal((await env.call(events)).status, 200)

  const { exchanges, issuer } = env.authority
  t.equal(exchanges.length, 2, 'two POSTs to the token endpoint')
  const [first, second] = exchanges
  t.equal(first?.status, 400)
  t.equal(first?.body?.error, 'use_dpop_nonce')
  t.type(first?.nonceSent, 'string', 'the first answer carries a DPoP-Nonce header')
  t.equal(first?.proof?.nonce, undefined, 'the first proof has no nonce')
  t.equal(second?.proof?.nonce, first?.nonceSent, 'the retry proof carries the nonce oidc-provider sent')
  t.equal(second?.status, 200)
  t.equal(second?.body?.token_type, 'DPoP')
  for (const exchange of exchanges) {
    t.match(exchange.proof, { htm: 'POST', htu: `${issuer}${tokenPath}` })
    const key = env.credentials.get('fjordvik')?.key
    t.match(exchange.assertion?.header, { typ: 'client-authentication+jwt', alg: 'PS256', kid: key?.kid }, 'oidc-provider verified the assertion')
    t.match(exchange.assertion?.claims, { iss: supplierClientId, sub: supplierClientId, aud: issuer })
  }
  t.not(first?.proof?.jti, second?.proof?.jti, 'a fresh proof for the retry')
  t.not(first?.assertion?.claims.jti, second?.assertion?.claims.jti, 'a fresh client assertion for the retry')
})

t.test('a second call reuses the cached token without asking oidc-provider again', async t => {
  const env = await startEnvironment(t)

  t.equal((await env.call(events)).status, 200)
  const postsAfterFirst = env.authority.exchanges.length
  t.equal((await env.call(events)).status, 200)

  t.equal(env.authority.exchanges.length, postsAfterFirst, 'no further POST to the token endpoint')
  const [first, second] = env.persontjenesten.received
  t.equal(second?.outcome, 'ok')
  t.equal(tokenOf(second?.headers.authorization), tokenOf(first?.headers.authorization), 'the same token')
  t.not(decodeJwt(String(second?.headers.dpop)).jti, decodeJwt(String(first?.headers.dpop)).jti, 'a fresh proof per call')
  t.equal(env.broker.deps.tokens.snapshot().length, 1)
})

t.test('the token path: getToken fetches a token the proxy then reuses', async t => {
  const env = await startEnvironment(t)
  const runtime = env.broker.deps.tenants.get('fjordvik')
  const request = runtime?.apis.get('persontjenesten')?.tokenRequest
  if (runtime === undefined || request === undefined) throw new TypeError('tenant fjordvik has no persontjenesten runtime')

  const token = await env.broker.deps.tokens.getToken({ tenant: 'fjordvik', api: 'persontjenesten' }, request)

  t.equal(env.authority.exchanges.length, 2)
  t.same(token.scopes, [restrictedScope])
  t.equal(token.dpopJkt, runtime.dpopKey.jkt)
  t.ok(token.expiresAtMs > token.issuedAtMs)
  t.match(decodeJwt(token.value), { iss: env.authority.issuer, aud: resource, client_id: supplierClientId, cnf: { jkt: runtime.dpopKey.jkt } })

  t.equal((await env.call(events)).status, 200)
  t.equal(env.authority.exchanges.length, 2, 'the proxy used the token the token path cached')
  t.equal(tokenOf(env.persontjenesten.received[0]?.headers.authorization), token.value)

  // What `helseid-broker token` does: its own dependencies (own nonce store, own cache, own DPoP key).
  const deps = await createDependencies(env.config, env.credentials, captureLogs().logger)
  t.teardown(async () => { await deps.close() })
  const ownRequest = deps.tenants.get('fjordvik')?.apis.get('persontjenesten')?.tokenRequest
  if (ownRequest === undefined) throw new TypeError('no token request for fjordvik')
  const own = await deps.tokens.getToken({ tenant: 'fjordvik', api: 'persontjenesten' }, ownRequest)
  t.equal(env.authority.exchanges.length, 4, 'a new handshake of its own')
  t.not(own.value, token.value)
  t.equal(member(decodeJwt(own.value).cnf, 'jkt'), ownRequest.dpopKey.jkt)
})

t.test('a client whose registered key is not the one the broker holds gets 502 BROKER_IDP_REJECTED invalid_client', async t => {
  const env = await startEnvironment(t)

  const response = await env.call('/stale/persontjenesten/api/v3/restricted-access/event/latest')

  t.equal(response.status, 502)
  t.match(response.headers.get('content-type'), /^application\/problem\+json/)
  t.equal(response.headers.get('helseid-broker-error'), 'BROKER_IDP_REJECTED')
  const problem = await response.json() as Record<string, unknown>
  t.match(problem, { status: 502, code: 'BROKER_IDP_REJECTED', oauthError: 'invalid_client', requestId: String })
  t.equal(env.authority.exchanges.length, 1, 'refused at client authentication, before the nonce handshake')
  const [refused] = env.authority.exchanges
  t.equal(refused?.status, 401)
  t.equal(refused?.body?.error, 'invalid_client')
  t.equal(refused?.assertion, undefined, 'the signature check failed before the claims were looked at')
  t.equal(env.persontjenesten.received.length, 0, 'nothing reached the API')
})

t.test('a scope the client is not allowed gets 502 BROKER_IDP_REJECTED invalid_scope', async t => {
  const env = await startEnvironment(t)

  const response = await env.call('/fjordvik/persontjenesten-full/api/v3/full-access/event/latest')

  t.equal(response.status, 502)
  t.equal(response.headers.get('helseid-broker-error'), 'BROKER_IDP_REJECTED')
  t.match(await response.json(), { code: 'BROKER_IDP_REJECTED', oauthError: 'invalid_scope' })
  const last = env.authority.exchanges.at(-1)
  t.equal(last?.status, 400)
  t.equal(last?.body?.error, 'invalid_scope')
  t.equal(env.persontjenesten.received.length, 0, 'nothing reached the API')

  const posts = env.authority.exchanges.length
  const again = await env.call('/fjordvik/persontjenesten-full/api/v3/full-access/event/latest')
  t.equal(again.status, 502)
  t.equal(env.authority.exchanges.length, posts, 'the refusal is remembered for a while, not asked again at once')
  t.equal((await env.call(events)).status, 200, 'the allowed scope still works for the same client')
})
