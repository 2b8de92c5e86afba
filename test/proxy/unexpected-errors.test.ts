// Errors nobody planned for: a bug on the proxy path becomes 500 BROKER_INTERNAL without its message, and
// requests the admin listener's framework refuses keep their 4xx under a broker code, never echoing the path.

import t from 'tap'
import { createNonceStore } from '../../src/helseid/dpop-nonces.ts'
import { createForwarder } from '../../src/proxy/forwarder.ts'
import type { CompletedRequest } from '../../src/proxy/proxy-handler.ts'
import { createProxyServer } from '../../src/proxy/proxy-server.ts'
import { createConcurrencyLimit } from '../../src/security/concurrency-limit.ts'
import { createRateLimiter } from '../../src/security/rate-limiter.ts'
import { captureLogs } from '../helpers/capture-logs.ts'
import { rawRequest, startTestBroker } from '../helpers/test-broker.ts'

const canary = 'CANARY-unexpected-3c9e'
const events = '/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest'

t.test('a bug on the proxy path: 500 BROKER_INTERNAL without its message, logged under the request id; the listener keeps serving', async t => {
  const base = await startTestBroker(t)
  const deps = base.broker.deps
  const logs = captureLogs()
  const slots = createConcurrencyLimit(4)
  const completed: CompletedRequest[] = []
  const realForward = createForwarder({ tokens: deps.tokens, nonces: createNonceStore(), clock: deps.clock, metrics: deps.metrics, agentFor: deps.agentFor })
  let forwarded = 0
  const proxy = createProxyServer(deps.config.limits, {
    policy: deps.policy,
    // The first call meets a bug (an error that is not a BrokerError, its message holding something secret); later calls go through.
    forward: async request => {
      forwarded++
      if (forwarded === 1) throw new TypeError(`${canary}: cannot read properties of undefined (${request.htu})`)
      return await realForward(request)
    },
    rateLimiter: createRateLimiter(deps.clock),
    upstreamSlots: slots,
    logger: logs.logger,
    onComplete: request => { completed.push(request) }
  })
  const origin = await proxy.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await proxy.close() })

  const failed = await fetch(`${origin}${events}`)
  const text = await failed.text()
  const after = await fetch(`${origin}${events}`)

  t.equal(failed.status, 500)
  t.equal(failed.headers.get('helseid-broker-error'), 'BROKER_INTERNAL')
  t.match(failed.headers.get('content-type'), /^application\/problem\+json/)
  const problem = JSON.parse(text) as { code: string, detail: string, requestId: string }
  t.match(problem, { status: 500, code: 'BROKER_INTERNAL', detail: 'internal error', requestId: /^[\w-]{8,}$/ })
  t.notOk(text.includes(canary), 'the error\'s own message never reaches the caller')
  t.equal(after.status, 200, 'the next request is served')
  await after.text()
  t.equal(slots.inFlight(), 0, 'the failed call gave back its upstream slot')

  const lines = logs.lines.map(line => JSON.parse(line) as { msg: string, level: number, reqId?: string })
  t.match(lines.find(line => line.msg === 'unexpected error'), { level: 50, reqId: problem.requestId }, 'logged at error level under the id the caller got')
  t.match(completed[0], { requestId: problem.requestId, status: 500, code: 'BROKER_INTERNAL', tenant: 'granfjelldal', api: 'persontjenesten' })
})

t.test('the admin listener: an undecodable path, a broken JSON body and an odd media type get broker codes, never the path back', async t => {
  const broker = await startTestBroker(t)
  const admin = broker.broker.adminUrl
  const nin = '13116900216'

  const badEscape = await rawRequest(admin, `/status/${nin}%zz`)
  const brokenJson = await fetch(`${admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"nin": "${nin}"` })
  const oddType = await fetch(`${admin}/reload`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: `<nin>${nin}</nin>` })
  const brokenText = await brokenJson.text()
  const oddText = await oddType.text()

  t.equal(badEscape.status, 400)
  t.equal(badEscape.headers['helseid-broker-error'], 'BROKER_PATH_REJECTED')
  t.notOk(badEscape.body.includes(nin), 'the path is not echoed')
  t.equal(brokenJson.status, 400)
  t.equal(brokenJson.headers.get('helseid-broker-error'), 'BROKER_BAD_REQUEST')
  t.match(JSON.parse(brokenText), { status: 400, code: 'BROKER_BAD_REQUEST', detail: /^request refused/ })
  t.equal(oddType.status, 415, 'the framework\'s 4xx status is kept')
  t.equal(oddType.headers.get('helseid-broker-error'), 'BROKER_BAD_REQUEST')
  t.notOk(brokenText.includes(nin) || oddText.includes(nin), 'the body is not echoed')
  t.notOk(broker.logs.text().includes(nin), 'nor logged')
  t.equal((await broker.admin('/healthz')).status, 200, 'the admin listener keeps serving')
})
