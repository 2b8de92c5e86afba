import t from 'tap'
import { createServer } from 'node:http'
import { createManualClock } from '../../src/clock.ts'
import { BrokerError } from '../../src/errors.ts'
import { createDiscovery, parseMetadata } from '../../src/helseid/discovery.ts'
import { listenOrigin } from '../../src/http/urls.ts'
import { startFakeAuthority } from '../../src/demo/fake-authority.ts'

t.test('discovery is fetched once, cached, and refreshed in the background when old', async t => {
  const authority = await startFakeAuthority()
  t.teardown(async () => { await authority.close() })
  const clock = createManualClock()
  let fetches = 0
  const discovery = createDiscovery({
    issuer: authority.issuer,
    clock,
    timeoutMs: 2000,
    maxAgeMs: 60_000,
    fetch: async (url, init) => { fetches++; return await fetch(url, init) }
  })

  const first = await discovery.get()
  await discovery.get()
  t.equal(fetches, 1)
  t.equal(first.tokenEndpoint, authority.tokenEndpoint)

  clock.advanceMs(61_000)
  await discovery.get()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(fetches, 2, 'stale document refreshed')

  await authority.close()
  clock.advanceMs(61_000)
  const kept = await discovery.get()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(kept.tokenEndpoint, authority.tokenEndpoint, 'a failed refresh keeps the old document')
  t.equal(discovery.current()?.issuer, authority.issuer)
})

t.test('an issuer mismatch or missing token endpoint is refused', async t => {
  const code = (fn: () => unknown): string | undefined => {
    try { fn(); return undefined } catch (error) { return error instanceof BrokerError ? error.code : 'other' }
  }
  t.equal(code(() => parseMetadata('{"issuer":"https://evil.example","token_endpoint":"https://evil.example/t"}', 'https://helseid-sts.nhn.no')), 'BROKER_IDP_BAD_RESPONSE')
  t.equal(code(() => parseMetadata('{"issuer":"https://helseid-sts.nhn.no"}', 'https://helseid-sts.nhn.no')), 'BROKER_IDP_BAD_RESPONSE')
  t.equal(code(() => parseMetadata('{"issuer":"https://helseid-sts.nhn.no","token_endpoint":"http://helseid-sts.nhn.no/connect/token"}', 'https://helseid-sts.nhn.no')), 'BROKER_IDP_BAD_RESPONSE', 'plain http off loopback')
  t.equal(code(() => parseMetadata('[]', 'x')), 'BROKER_IDP_BAD_RESPONSE')
  t.equal(parseMetadata('{"issuer":"https://helseid-sts.nhn.no","token_endpoint":"https://helseid-sts.nhn.no/connect/token"}', 'https://helseid-sts.nhn.no').tokenEndpoint, 'https://helseid-sts.nhn.no/connect/token')
})

t.test('an unreachable issuer is BROKER_IDP_UNREACHABLE', async t => {
  const discovery = createDiscovery({ issuer: 'http://127.0.0.1:9', clock: createManualClock(), timeoutMs: 1000, fetch: async (url, init) => await fetch(url, init) })
  await t.rejects(discovery.get(), { code: 'BROKER_IDP_UNREACHABLE' })
  t.equal(discovery.current(), undefined)
})

t.test('a discovery answer that is not a document: a broker code and a message that says what came', async t => {
  const answers: Array<[number, string]> = [[503, 'busy'], [404, 'not here'], [200, '<html>login</html>'], [200, 'null']]
  let index = 0
  const server = createServer((_request, response) => {
    const [status, body] = answers[index++] ?? [500, '']
    response.writeHead(status, { 'content-type': 'text/plain' }).end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const issuer = listenOrigin(server.address(), '127.0.0.1')
  const outcomes: Array<{ code: string, message: string }> = []
  for (let i = 0; i < answers.length; i++) {
    // A fresh discovery each time: a failed fetch is not cached, but a fresh one keeps the cases apart.
    const discovery = createDiscovery({ issuer, clock: createManualClock(), timeoutMs: 2000, fetch: async (url, init) => await fetch(url, init) })
    try {
      await discovery.get()
      outcomes.push({ code: 'none', message: '' })
    } catch (error) {
      outcomes.push(error instanceof BrokerError ? { code: error.code, message: error.message } : { code: 'other', message: String(error) })
    }
  }

  t.same(outcomes, [
    { code: 'BROKER_IDP_UNREACHABLE', message: 'HelseID discovery answered HTTP 503' },
    { code: 'BROKER_IDP_BAD_RESPONSE', message: 'HelseID discovery answered HTTP 404' },
    { code: 'BROKER_IDP_BAD_RESPONSE', message: 'HelseID discovery is not JSON' },
    { code: 'BROKER_IDP_BAD_RESPONSE', message: 'HelseID discovery is not a JSON object' }
  ], 'a server error may pass (unreachable, retried); anything else is a bad answer')
})
