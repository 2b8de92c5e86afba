import t from 'tap'
import { startConnectProxy } from '../helpers/connect-proxy.ts'
import { startTestBroker } from '../helpers/test-broker.ts'

t.test('with egress.proxy set, HelseID and the API are reached only through the proxy', async t => {
  const proxy = await startConnectProxy(t)
  const broker = await startTestBroker(t, { egressProxy: proxy.url })

  const response = await broker.call('/fjordvik/persontjenesten/api/v3/restricted-access/event/latest')

  t.equal(response.status, 200)
  const authority = new URL(broker.authority.issuer).host
  const persontjenesten = new URL(broker.persontjenesten.origin).host
  t.ok(proxy.tunnels.includes(authority), 'discovery and token requests went through the proxy')
  t.ok(proxy.tunnels.includes(persontjenesten), 'the API call went through the proxy')
  t.same(new Set(proxy.tunnels), new Set([authority, persontjenesten]), 'and nothing else')
})

t.test('with the proxy down, the API call fails as unreachable instead of going direct', async t => {
  const broker = await startTestBroker(t, { egressProxy: 'http://127.0.0.1:9' })

  const response = await broker.call('/fjordvik/persontjenesten/api/v3/restricted-access/event/latest')

  t.equal(response.status, 503, 'not even discovery could be fetched: no token')
  t.equal(broker.authority.tokenRequests.length, 0)
  t.equal(broker.persontjenesten.received.length, 0)
})
