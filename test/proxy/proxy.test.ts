import t from 'tap'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose'
import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { rawRequest, startTestBroker } from '../helpers/test-broker.ts'
import { demoNin } from '../../src/demo/synthetic-persons.ts'

const events = '/fjordvik/persontjenesten/api/v3/restricted-access/event/latest'
const getByNin = '/granfjelldal/persontjenesten/api/v3/restricted-access/person/get-by-nin?informationParts=Name&informationParts=Birth&includeHistory=false'

t.test('a GET reaches Persontjenesten with a DPoP-bound token and a proof the resource server accepts', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.call(`${events}?x=1&y=%C3%A6`)

  t.equal(response.status, 200)
  t.equal(response.headers.get('helseid-broker-error'), null)
  const [received] = broker.persontjenesten.received
  t.equal(received?.outcome, 'ok')
  t.equal(received?.query, 'x=1&y=%C3%A6', 'query arrives unchanged')
  t.equal(received?.headers['api-version'], '3', 'static API header added')
  const authorization = String(received?.headers.authorization)
  t.match(authorization, /^DPoP /)
  const token = authorization.slice('DPoP '.length)
  t.equal(token, broker.authority.issuedTokens[0])
  const proof = String(received?.headers.dpop)
  const proofClaims = decodeJwt(proof)
  t.match(proofClaims, { htm: 'GET', htu: `${broker.persontjenesten.origin}/api/v3/restricted-access/event/latest` })
  t.equal(proofClaims.ath, createHash('sha256').update(token).digest('base64url'))
  const header = decodeProtectedHeader(proof)
  t.equal(header.alg, 'ES256', 'proofs are signed with the broker-held P-256 key, not the RSA client key')
  t.equal((decodeJwt(token).cnf as { jkt: string }).jkt, await calculateJwkThumbprint(header.jwk as JWK))
})

t.test('a form POST (get-by-nin) arrives with body, query and content type unchanged', async t => {
  const broker = await startTestBroker(t)
  const body = `nin=${demoNin}`

  const response = await broker.call(getByNin, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body
  })

  t.equal(response.status, 200)
  const person = await response.json() as { id?: string }
  t.type(person.id, 'string')
  const [received] = broker.persontjenesten.received
  t.equal(received?.outcome, 'ok')
  t.equal(received?.method, 'POST')
  t.equal(received?.body, body)
  t.equal(received?.contentType, 'application/x-www-form-urlencoded')
  t.equal(received?.query, 'informationParts=Name&informationParts=Birth&includeHistory=false')
  t.equal(decodeJwt(String(received?.headers.dpop)).htm, 'POST')
})

t.test('a large streamed body is forwarded unchanged', async t => {
  const broker = await startTestBroker(t)
  const nins = Array.from({ length: 100 }, () => demoNin)
  const body = `${nins.map(nin => `nins=${nin}`).join('&')}&padding=${'x'.repeat(200_000)}`

  const response = await broker.call('/granfjelldal/persontjenesten/api/v3/restricted-access/person/bulk-by-nin?informationParts=Name', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body
  })

  t.equal(response.status, 200)
  t.equal(broker.persontjenesten.received[0]?.body, body)
})

t.test('200 concurrent first requests for one tenant cost exactly one token', async t => {
  const broker = await startTestBroker(t)

  const responses = await Promise.all(Array.from({ length: 200 }, async () => await broker.call(events)))

  t.same(new Set(responses.map(r => r.status)), new Set([200]))
  t.equal(broker.authority.issuedTokens.length, 1)
  t.same(broker.authority.tokenRequests.map(r => r.outcome), ['use_dpop_nonce', 'issued'])
  const metrics = await (await broker.admin('/metrics')).text()
  t.match(metrics, /helseid_broker_token_cache_total\{result="miss"\} 1\n/)
  const count = (result: string): number => Number(new RegExp(`token_cache_total\\{result="${result}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
  t.equal(count('miss') + count('coalesced') + count('hit'), 200, 'every request looked up the cache once')
})

t.test('the HelseID nonce handshake costs exactly one retry, and the nonce is remembered', async t => {
  const broker = await startTestBroker(t)

  await broker.call(events)
  await broker.call('/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest')

  const outcomes = broker.authority.tokenRequests.map(r => [r.outcome, typeof r.dpopNonce])
  t.same(outcomes, [['use_dpop_nonce', 'undefined'], ['issued', 'string'], ['issued', 'string']],
    'the second tenant reuses the remembered nonce: no second handshake')
})

t.test('a resource server nonce challenge is answered with exactly one retry', async t => {
  const broker = await startTestBroker(t, { persontjenesten: { requireNonce: true } })

  const first = await broker.call(events)
  const second = await broker.call(events)

  t.equal(first.status, 200)
  t.equal(second.status, 200)
  const received = broker.persontjenesten.received
  t.equal(received.length, 3, 'challenge, retry, then the remembered nonce works at once')
  t.not(received[0]?.outcome, 'ok')
  t.equal(received[1]?.outcome, 'ok')
  t.equal(received[2]?.outcome, 'ok')
  t.type(decodeJwt(String(received[1]?.headers.dpop)).nonce, 'string')
})

t.test('single-tenant child and multi-tenant parent:child reach the token as the right claims', async t => {
  const broker = await startTestBroker(t)

  await broker.call('/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest')
  await broker.call(events)

  const [granfjelldal, fjordvik] = broker.authority.tokenRequests.filter(r => r.outcome === 'issued')
  t.match(granfjelldal?.assertionDetails, { practitioner_role: { organization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.101', value: '999977776' } } } })
  t.match(fjordvik?.assertionDetails, { practitioner_role: { organization: { identifier: { system: 'urn:oid:1.0.6523', value: 'NO:ORGNR:999977774:999977775' } } } })
  const [singleTenantToken, multiTenantToken] = broker.authority.issuedTokens.map(token => decodeJwt(token))
  t.equal(singleTenantToken?.['helseid://claims/client/claims/orgnr_parent'], '999977774')
  t.equal(singleTenantToken?.['helseid://claims/client/claims/orgnr_child'], '999977776')
  t.equal(multiTenantToken?.['helseid://claims/client/claims/orgnr_parent'], '999977774')
  t.equal(multiTenantToken?.['helseid://claims/client/claims/orgnr_child'], '999977775')
})

t.test('with HelseID down, cached tokens keep serving; without one the answer is 503', async t => {
  const broker = await startTestBroker(t)
  t.equal((await broker.call(events)).status, 200)

  await broker.authority.close()
  const cached = await broker.call(events)
  const uncached = await broker.call('/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest')

  t.equal(cached.status, 200)
  t.equal(uncached.status, 503)
  t.equal(uncached.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.equal(uncached.headers.get('helseid-broker-error'), 'BROKER_IDP_UNREACHABLE')
  const problem = await uncached.json() as Record<string, unknown>
  t.match(problem, { status: 503, code: 'BROKER_IDP_UNREACHABLE', type: 'urn:helseid-broker:error:BROKER_IDP_UNREACHABLE' })
  t.type(problem.requestId, 'string')
})

t.test('HelseID answering 503 is retried with backoff, then reported as 503', async t => {
  const broker = await startTestBroker(t)
  broker.authority.setTokenEndpointMode('unavailable')

  const response = await broker.call(events)

  t.equal(response.status, 503)
  t.equal(broker.authority.tokenRequests.filter(r => r.outcome === 'unavailable').length, 2, 'two attempts, as the test retry policy allows')
})

t.test('HelseID refusing the client is 502 with the OAuth error, and is not retried in a loop', async t => {
  const broker = await startTestBroker(t)
  broker.authority.registerClient({ clientId: 'demo-epj-supplier', publicJwks: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }], scopes: ['nhn:hgd-persontjenesten-api/restricted-access'], multiTenant: true })

  const first = await broker.call(events)
  const second = await broker.call(events)

  t.equal(first.status, 502)
  t.match(await first.json(), { code: 'BROKER_IDP_REJECTED', oauthError: 'invalid_client' })
  t.equal(second.status, 502)
  t.equal(broker.authority.tokenRequests.filter(r => r.outcome === 'invalid_client').length, 1, 'the refusal is remembered briefly instead of asked again')
})

t.test('unknown tenant and unknown API are 404 problem+json', async t => {
  const broker = await startTestBroker(t)

  const tenant = await broker.call('/nosuch/persontjenesten/api/v3/restricted-access/event/latest')
  const api = await broker.call('/granfjelldal/nosuch/x')
  const bare = await broker.call('/')

  t.equal(tenant.status, 404)
  t.equal(tenant.headers.get('helseid-broker-error'), 'BROKER_TENANT_NOT_FOUND')
  t.equal(api.status, 404)
  t.equal(api.headers.get('helseid-broker-error'), 'BROKER_API_NOT_FOUND')
  t.equal(bare.status, 404)
  t.equal(bare.headers.get('helseid-broker-error'), 'BROKER_NOT_FOUND')
  t.equal(broker.authority.tokenRequests.length, 0, 'refused requests cost no token')
})

t.test('upstream errors pass through untouched', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.call(getByNin, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'nin=00000000000'
  })

  t.equal(response.status, 404)
  t.equal(response.headers.get('helseid-broker-error'), null)
  t.match(await response.json(), { title: /./ })
})

t.test('upstream down is 502; upstream too slow is 504', async t => {
  const broker = await startTestBroker(t, { apiTimeoutMs: 300 })
  broker.persontjenesten.setResponseDelayMs(2000)

  const slow = await broker.call(events)
  await broker.persontjenesten.close()
  const down = await broker.call(events)

  t.equal(slow.status, 504)
  t.equal(slow.headers.get('helseid-broker-error'), 'BROKER_UPSTREAM_TIMEOUT')
  t.equal(down.status, 502)
  t.equal(down.headers.get('helseid-broker-error'), 'BROKER_UPSTREAM_UNREACHABLE')
  t.match(await down.json(), { code: 'BROKER_UPSTREAM_UNREACHABLE', status: 502 })
})

t.test('the caller cannot pass its own credentials or remove the broker\'s headers', async t => {
  const broker = await startTestBroker(t)

  // node:http, not fetch: fetch refuses to send a Connection header.
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const request = httpRequest(`${broker.broker.proxyUrl}${events}`, {
      headers: {
        authorization: 'Bearer caller-token',
        dpop: 'caller-proof',
        cookie: 'session=secret',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': 'dropped',
        'x-kept': 'kept'
      }
    }, response => { response.resume(); response.on('end', () => { resolve(response.statusCode) }) })
    request.on('error', reject)
    request.end()
  })

  t.equal(status, 200)
  const headers = broker.persontjenesten.received[0]?.headers ?? {}
  t.match(String(headers.authorization), /^DPoP ey/)
  t.not(headers.dpop, 'caller-proof')
  t.equal(headers.cookie, undefined)
  t.equal(headers['x-drop-me'], undefined)
  t.equal(headers['x-kept'], 'kept')
})

t.test('path tricks are refused before any token is fetched', async t => {
  const broker = await startTestBroker(t)

  const traversal = await rawRequest(broker.broker.proxyUrl, '/fjordvik/persontjenesten/api/%2e%2e/%2e%2e/admin')
  const dots = await rawRequest(broker.broker.proxyUrl, '/fjordvik/persontjenesten/../../admin')
  const encodedSlash = await rawRequest(broker.broker.proxyUrl, '/fjordvik/persontjenesten/api%2f..%2fadmin')

  t.equal(traversal.status, 400)
  t.equal(traversal.headers['helseid-broker-error'], 'BROKER_PATH_REJECTED')
  t.equal(dots.status, 400)
  t.equal(encodedSlash.status, 400)
  t.equal(broker.persontjenesten.received.length, 0)
  t.equal(broker.authority.tokenRequests.length, 0)
})

t.test('TRACE is refused with 405; HEAD is forwarded and answered without a body', async t => {
  const broker = await startTestBroker(t)

  const trace = await rawRequest(broker.broker.proxyUrl, events, { method: 'TRACE' })
  const head = await rawRequest(broker.broker.proxyUrl, events, { method: 'HEAD' })

  t.equal(trace.status, 405)
  t.equal(trace.headers['helseid-broker-error'], 'BROKER_METHOD_NOT_ALLOWED')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.same(broker.persontjenesten.received.map(r => r.method), ['HEAD'])
})

t.test('a W3C traceparent from the caller arrives upstream unchanged', async t => {
  const broker = await startTestBroker(t)
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

  const response = await broker.call(events, { headers: { traceparent, tracestate: 'vendor=1' } })

  t.equal(response.status, 200)
  t.equal(broker.persontjenesten.received[0]?.headers.traceparent, traceparent)
  t.equal(broker.persontjenesten.received[0]?.headers.tracestate, 'vendor=1')
})
