import t from 'tap'
import { createManualClock } from '../../src/clock.ts'
import { BrokerError } from '../../src/errors.ts'
import { createDiscovery, parseMetadata } from '../../src/helseid/discovery.ts'
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
