import t from 'tap'
import fc from 'fast-check'
import { BrokerError } from '../../src/errors.ts'
import { parseProxyTarget, toUpstreamUrl } from '../../src/proxy/target-url.ts'

const base = 'https://api.example.test/base'

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (error) {
    return error instanceof BrokerError ? error.code : 'not a BrokerError'
  }
}

t.test('splits tenant, api, path and raw query', async t => {
  t.same(parseProxyTarget('/granfjelldal/persontjenesten/api/v3/x?a=1&a=2'), {
    tenant: 'granfjelldal', api: 'persontjenesten', path: '/api/v3/x', query: 'a=1&a=2'
  })
  t.same(parseProxyTarget('/t/a'), { tenant: 't', api: 'a', path: '/', query: '' })
  t.same(parseProxyTarget('/t/a/ping/'), { tenant: 't', api: 'a', path: '/ping/', query: '' })
})

t.test('refuses targets that could leave the API base', async t => {
  const hostile = [
    'http://evil.example/x', '//evil.example/t/a/x', '/t/a/../../x', '/t/a/%2e%2e/x', '/t/a/.%2E/x',
    '/t/a/%2E./x', '/t/a/./x', '/t/a/x%2f..%2fy', '/t/a/x%5c..', '/t/a/%252e%252e/x', '/t/a/x\\..\\y',
    '/t/a//x', '/t/a/x%00', '/t/a/x%0d%0aHost:evil', '/t/a/x%zz', '/t/a/x#frag', '/t/a/x y', '*', '',
    '/t/a/%c0%ae%c0%ae/x', '/t/a/..;/x', '/t/a/..;jsessionid=1/x', '/t/a/%2e%2e%3b/x', '/t/a/.;/x'
  ]
  for (const target of hostile) {
    t.equal(codeOf(() => parseProxyTarget(target)), 'BROKER_PATH_REJECTED', target)
  }
})

t.test('a target without tenant and API is not found', async t => {
  t.equal(codeOf(() => parseProxyTarget('/')), 'BROKER_NOT_FOUND')
  t.equal(codeOf(() => parseProxyTarget('/only-tenant')), 'BROKER_NOT_FOUND')
  t.equal(codeOf(() => parseProxyTarget('/Upper/api/x')), 'BROKER_NOT_FOUND')
})

t.test('htu is the upstream URL without the query', async t => {
  const { url, htu } = toUpstreamUrl(base, parseProxyTarget('/t/a/api/v3/person/abc?informationParts=Name'))
  t.equal(url.href, 'https://api.example.test/base/api/v3/person/abc?informationParts=Name')
  t.equal(htu, 'https://api.example.test/base/api/v3/person/abc')
})

t.test('property: no accepted input path makes the forwarded URL leave the API base', async t => {
  const segment = fc.oneof(
    fc.constantFrom('.', '..', '%2e', '%2E%2e', '%2f', '%5c', '%25', '\\', '', 'api', 'v3', '@evil', ':80', 'x?y', '#', '%00', '%zz', '%c0%ae', '..;', '%2e%2e;x'),
    fc.string({ maxLength: 6 })
  )
  fc.assert(fc.property(fc.array(segment, { maxLength: 8 }), fc.string({ maxLength: 10 }), (segments, query) => {
    const target = `/t/a/${segments.join('/')}?${query}`
    let result
    try {
      result = toUpstreamUrl(base, parseProxyTarget(target))
    } catch (error) {
      return error instanceof BrokerError
    }
    return result.url.origin === 'https://api.example.test' &&
      result.url.pathname.startsWith('/base/') &&
      !result.url.pathname.split('/').some(s => s === '..' || s === '.')
  }), { numRuns: 5000 })
  t.pass('5000 generated targets stayed under the base URL or were refused')
})
