import t from 'tap'
import { compileRouteRules } from '../../src/security/route-allowlist.ts'
import { createRateLimiter } from '../../src/security/rate-limiter.ts'
import { createRequestGuard, isLoopbackAddress } from '../../src/security/request-guards.ts'
import { createManualClock } from '../../src/clock.ts'
import { BrokerError } from '../../src/errors.ts'

const rule = (method: string, pattern: string): { method: string, pattern: string, text: string } => ({ method, pattern, text: `${method} ${pattern}` })

t.test('rules: * is one whole segment, a final ** is any rest, methods match exactly or by *', async t => {
  const match = compileRouteRules([
    rule('GET', '/api/v3/restricted-access/person/*'),
    rule('POST', '/api/v3/restricted-access/person/get-by-nin'),
    rule('*', '/ping'),
    rule('GET', '/api/v3/restricted-access/event/**')
  ])
  if (match === undefined) throw new TypeError('rules compiled to nothing')
  t.ok(match('GET', '/api/v3/restricted-access/person/abc'))
  t.notOk(match('GET', '/api/v3/restricted-access/person/abc/more'))
  t.notOk(match('GET', '/api/v3/restricted-access/person/'), 'an empty segment is not "*"')
  t.notOk(match('DELETE', '/api/v3/restricted-access/person/abc'))
  t.ok(match('POST', '/api/v3/restricted-access/person/get-by-nin'))
  t.notOk(match('GET', '/api/v3/restricted-access/person/get-by-nin/x'))
  t.ok(match('OPTIONS', '/ping'))
  t.ok(match('GET', '/api/v3/restricted-access/event'), '** also matches nothing')
  t.ok(match('GET', '/api/v3/restricted-access/event/latest'))
  t.ok(match('GET', '/api/v3/restricted-access/event/a/b/c'))
  t.notOk(match('GET', '/api/v3/full-access/event/latest'))
  t.notOk(match('GET', '/api/v3/restricted-access/%70erson/abc'), 'encoded letters fail closed')
  t.equal(compileRouteRules([]), undefined, 'no rules: no matcher, everything passes')
})

t.test('rate limiter: burst, then one token per 1/rate seconds, with Retry-After', async t => {
  const clock = createManualClock()
  const limit = createRateLimiter(clock)
  const config = { requestsPerSecond: 2, burst: 2 }

  t.same([limit('a', config).isAllowed, limit('a', config).isAllowed, limit('a', config).isAllowed], [true, true, false])
  t.same(limit('a', config), { isAllowed: false, retryAfterSeconds: 1 })
  t.ok(limit('b', config).isAllowed, 'buckets are per key')
  clock.advanceMs(500)
  t.ok(limit('a', config).isAllowed)
  t.same(limit('a', config, true), { isAllowed: false, retryAfterSeconds: 1 }, 'a peek does not take a token')
})

t.test('guards: loopback addresses, Host names and browser signals', async t => {
  t.ok(isLoopbackAddress('127.0.0.1'))
  t.ok(isLoopbackAddress('::ffff:127.0.0.9'))
  t.ok(isLoopbackAddress('::1'))
  t.notOk(isLoopbackAddress('10.0.0.5'))
  t.notOk(isLoopbackAddress(undefined))
  const guard = createRequestGuard({ hostnames: ['broker.kommune.local'], allowedOrigins: [], isLoopbackOnly: true })
  const code = (fn: () => void): string | undefined => { try { fn(); return undefined } catch (error) { return error instanceof BrokerError ? error.code : 'other' } }
  t.equal(code(() => { guard({ host: '127.0.0.1:8480' }, '10.0.0.5', 8480) }), 'BROKER_CLIENT_NOT_LOCAL')
  t.equal(code(() => { guard({ host: 'broker.kommune.local:8480' }, '127.0.0.1', 8480) }), undefined)
  t.equal(code(() => { guard({ host: '[::1]:8480' }, '::1', 8480) }), undefined)
  t.equal(code(() => { guard({ host: '127.1.2.3' }, '127.0.0.1', 8480) }), undefined)
  t.equal(code(() => { guard({ host: 'evil.example' }, '127.0.0.1', 8480) }), 'BROKER_HOST_NOT_ALLOWED')
  t.equal(code(() => { guard({ host: 'user@localhost' }, '127.0.0.1', 8480) }), 'BROKER_HOST_NOT_ALLOWED')
  t.equal(code(() => { guard({ host: 'localhost', 'sec-fetch-site': 'none' }, '127.0.0.1', 8480) }), undefined, 'a typed URL is not a cross-site request')
  t.equal(code(() => { guard({ host: 'localhost', origin: 'http://localhost:3000' }, '127.0.0.1', 8480) }), 'BROKER_BROWSER_REFUSED')
})
