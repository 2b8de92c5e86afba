import { createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { decodeJwt, exportJWK, generateKeyPair } from 'jose'
import { pino } from 'pino'
import { createMetrics } from '../../src/admin/metrics.ts'
import { systemClock } from '../../src/clock.ts'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { BrokerError, IdpRejectedError } from '../../src/errors.ts'
import { createDiscovery } from '../../src/helseid/discovery.ts'
import { createDpopKey } from '../../src/helseid/dpop-key.ts'
import { createNonceStore } from '../../src/helseid/dpop-nonces.ts'
import type { FetchLike } from '../../src/helseid/fetch-like.ts'
import { createTokenClient, type TokenClient, type TokenRequest } from '../../src/helseid/token-client.ts'
import type { ClientKey } from '../../src/keys/client-key.ts'
import { parseClientKey } from '../../src/keys/load-client-key.ts'
import { createTokenService } from '../../src/tokens/token-service.ts'

// Cold start against the local authority, which (like HelseID) answers a proof without its nonce with use_dpop_nonce.

const scope = 'nhn:test-api/read'

interface Cold {
  readonly authority: FakeAuthority
  readonly client: TokenClient
  /** Token endpoint traffic in order: 'sent <client_id>', then 'answered <client_id> <status>' or 'failed <client_id>'. */
  readonly events: string[]
  /** How often the client reported a use_dpop_nonce it answered. */
  readonly nonceRequests: () => number
  /** A tenant of the multi-tenant supplier (its own parent number) or a single-tenant client of its own. */
  readonly tenant: (index: number, options?: { singleTenant?: boolean }) => Promise<TokenRequest>
}

async function startCold (t: Test, options: { timeoutMs?: number, firstTokenRequestTo?: string } = {}): Promise<Cold> {
  const authority = await startFakeAuthority()
  t.teardown(async () => { await authority.close() })
  const supplierKey = await registerClient(authority, 'supplier', { multiTenant: true, organization: '999977773' })
  const events: string[] = []
  let tokenRequestsSent = 0
  // The real fetch over loopback, watched; with firstTokenRequestTo the first token request goes there instead.
  const fetch: FetchLike = async (url, init) => {
    if (url !== authority.tokenEndpoint) return await globalThis.fetch(url, init)
    const clientId = new URLSearchParams(init.body).get('client_id')
    const target = tokenRequestsSent++ === 0 ? options.firstTokenRequestTo ?? url : url
    events.push(`sent ${clientId}`)
    try {
      const response = await globalThis.fetch(target, init)
      events.push(`answered ${clientId} ${response.status}`)
      return response
    } catch (error) {
      events.push(`failed ${clientId}`)
      throw error
    }
  }
  const timeoutMs = options.timeoutMs ?? 5000
  let nonceRequests = 0
  const client = createTokenClient({
    discovery: createDiscovery({ issuer: authority.issuer, fetch, clock: systemClock, timeoutMs }),
    fetch,
    clock: systemClock,
    nonces: createNonceStore(),
    timeoutMs,
    onNonceRequested: () => { nonceRequests++ }
  })
  return {
    authority,
    client,
    events,
    nonceRequests: () => nonceRequests,
    async tenant (index, { singleTenant = false } = {}) {
      const orgnr = String(910_000_001 + index)
      if (!singleTenant) return { clientId: 'supplier', key: supplierKey, organization: { parent: orgnr }, scopes: [scope], dpopKey: await createDpopKey() }
      const clientId = `single-${index}`
      const key = await registerClient(authority, clientId, { organization: orgnr })
      return { clientId, key, organization: {}, scopes: [scope], dpopKey: await createDpopKey() }
    }
  }
}

async function registerClient (authority: FakeAuthority, clientId: string, registration: { organization: string, multiTenant?: boolean }): Promise<ClientKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const key = await parseClientKey(await exportJWK(privateKey), `(test: ${clientId})`)
  authority.registerClient({ clientId, publicJwks: [key.publicJwk], scopes: [scope], ...registration })
  return key
}

function outcomes (authority: FakeAuthority): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const request of authority.tokenRequests) counts[request.outcome] = (counts[request.outcome] ?? 0) + 1
  return counts
}

function orgnrParent (token: string): unknown {
  return decodeJwt(token)['helseid://claims/client/claims/orgnr_parent']
}

t.test('N tenants fetching cold at once cost one nonce handshake and N tokens', async t => {
  const cold = await startCold(t)
  const requests: TokenRequest[] = []
  for (let index = 0; index < 20; index++) requests.push(await cold.tenant(index, { singleTenant: index % 5 === 4 }))
  const tokens = createTokenService({ client: cold.client, clock: systemClock, logger: pino({ level: 'silent' }), metrics: createMetrics({ withDefaults: false }) })

  // Every tenant asks three times at once: the token service coalesces per tenant, the client shares the handshake.
  const results = await Promise.all(requests.flatMap((request, index) =>
    [1, 2, 3].map(async () => ({ index, token: await tokens.getToken({ tenant: `t${index}`, api: 'test' }, request) }))))

  t.same(outcomes(cold.authority), { use_dpop_nonce: 1, issued: 20 })
  t.equal(cold.authority.tokenRequests.length, 21)
  t.equal(cold.authority.tokenRequests[0]?.outcome, 'use_dpop_nonce', 'the handshake came first')
  t.ok(cold.authority.tokenRequests.slice(1).every(request => request.dpopNonce !== undefined), 'everyone else sent the learned nonce')
  t.equal(cold.nonceRequests(), 1)
  t.equal(new Set(results.map(result => result.token.value)).size, 20, 'one token per tenant')
  t.same(
    results.map(({ token }) => [decodeJwt(token.value).client_id, orgnrParent(token.value), token.dpopJkt]),
    results.map(({ index }) => [requests[index]?.clientId, String(910_000_001 + index), requests[index]?.dpopKey.jkt]),
    'each tenant got its own token: its client, its organisation, bound to its DPoP key')
})

t.test('once a nonce is known, requests go in parallel; a stale one is answered by each request\'s own single retry', async t => {
  const cold = await startCold(t)
  await cold.client.fetchToken(await cold.tenant(0))
  t.same(outcomes(cold.authority), { use_dpop_nonce: 1, issued: 1 })

  cold.authority.rotateNonce()
  cold.authority.setTokenEndpointMode('slow', 1000) // every answer takes a while (long enough for a loaded machine), so sends before answers mean no waiting
  const requests = await Promise.all([1, 2, 3, 4].map(async index => await cold.tenant(index)))
  cold.events.length = 0
  const issued = await Promise.all(requests.map(async request => await cold.client.fetchToken(request)))

  t.equal(issued.length, 4)
  t.same(cold.events.slice(0, 4), ['sent supplier', 'sent supplier', 'sent supplier', 'sent supplier'], 'all four sent before any answer: nobody waits when a nonce is known')
  t.same(outcomes(cold.authority), { use_dpop_nonce: 5, issued: 5 }, 'each stale request retried once with the new nonce')
  t.equal(cold.nonceRequests(), 5)
})

t.test('the first request failing with invalid_client fails only that tenant; the waiting ones go on', async t => {
  const cold = await startCold(t)
  cold.authority.setTokenEndpointMode('slow', 1000) // the learner is surely still in flight when the others arrive
  const unknown: TokenRequest = { ...await cold.tenant(0), clientId: 'not-registered' }
  const others = await Promise.all([1, 2, 3, 4, 5].map(async index => await cold.tenant(index, { singleTenant: index === 5 })))

  const first = cold.client.fetchToken(unknown)
  while (cold.events.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  const rest = others.map(async request => await cold.client.fetchToken(request))

  const refusal = await first.then(() => undefined, (error: unknown) => error)
  t.ok(refusal instanceof IdpRejectedError && refusal.oauthError === 'invalid_client', 'the unknown client is refused')
  const tokens = await Promise.all(rest)
  t.equal(tokens.length, 5, 'every waiting tenant got its token')
  t.same(cold.events.slice(0, 2), ['sent not-registered', 'answered not-registered 401'], 'nobody else was sent while the first request was in flight')
  t.equal(cold.authority.tokenRequests[0]?.outcome, 'invalid_client')
  // invalid_client comes before the nonce check, so no nonce was learned: each waiting request does its own handshake.
  t.same(outcomes(cold.authority), { invalid_client: 1, use_dpop_nonce: 5, issued: 5 })
})

t.test('the first request timing out does not fail or hang the waiting ones', async t => {
  // A loopback listener that accepts and never answers: the first token request goes there and times out.
  const sockets = new Set<Socket>()
  const blackHole = createServer(socket => { sockets.add(socket) })
  await new Promise<void>(resolve => blackHole.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise(resolve => blackHole.close(resolve))
  })
  const address = blackHole.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  // Long enough that the real token requests never time out on a loaded machine; only the black hole does.
  const timeoutMs = 1000
  const cold = await startCold(t, { timeoutMs, firstTokenRequestTo: `http://127.0.0.1:${port}/connect/token` })
  const requests = await Promise.all([0, 1, 2, 3].map(async index => await cold.tenant(index, { singleTenant: index === 3 })))

  const started = performance.now()
  const settled = await Promise.allSettled(requests.map(async request => await cold.client.fetchToken(request)))
  const elapsedMs = performance.now() - started

  const failed = settled.flatMap(result => result.status === 'rejected' ? [result.reason as unknown] : [])
  t.equal(failed.length, 1, 'only the first request fails; the waiting ones still get tokens')
  t.ok(failed[0] instanceof BrokerError && failed[0].code === 'BROKER_IDP_UNREACHABLE', 'it failed as unreachable')
  t.same(cold.events.slice(0, 2), ['sent supplier', 'failed supplier'], 'the others waited for the first to fail')
  t.same(outcomes(cold.authority), { use_dpop_nonce: 3, issued: 3 }, 'no nonce was learned, so each went without one')
  t.ok(elapsedMs < timeoutMs + 3000, `done in ${elapsedMs.toFixed(0)} ms: the wait is bounded by the first request's timeout`)
})

t.test('the wait is per token endpoint and ends with the first answer, not with the first request\'s retry', async t => {
  const cold = await startCold(t)
  cold.authority.setTokenEndpointMode('slow', 1000)
  const requests = await Promise.all([0, 1, 2].map(async index => await cold.tenant(index)))

  await Promise.all(requests.map(async request => await cold.client.fetchToken(request)))

  // The first answer (use_dpop_nonce) releases the others; they go alongside the first request's retry.
  t.same(cold.events.slice(0, 2), ['sent supplier', 'answered supplier 400'])
  t.same(cold.events.slice(2, 5), ['sent supplier', 'sent supplier', 'sent supplier'], 'the retry and both others are sent before any of them is answered')
  t.same(outcomes(cold.authority), { use_dpop_nonce: 1, issued: 3 })
})
