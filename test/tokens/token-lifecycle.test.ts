import t, { type Test } from 'tap'
import { decodeJwt } from 'jose'
import { createManualClock } from '../../src/clock.ts'
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts'

const events = '/granfjelldal/persontjenesten/api/v3/restricted-access/event/latest'

async function startWithClock (t: Test): Promise<{ broker: TestBroker, clock: ReturnType<typeof createManualClock> }> {
  const clock = createManualClock()
  const broker = await startTestBroker(t, {
    authority: { clock, tokenLifetimeSeconds: 300 },
    persontjenesten: { clock, jwksCacheMaxAgeMs: 0 },
    broker: { clock }
  })
  return { broker, clock }
}

function tokenUsed (broker: TestBroker, index: number): string {
  return String(broker.persontjenesten.received[index]?.headers.authorization).slice('DPoP '.length)
}

async function until (condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise(resolve => setTimeout(resolve, 10))
}

t.test('a cached token is reused until its refresh time, then refreshed in the background while still served', async t => {
  const { broker, clock } = await startWithClock(t)

  t.equal((await broker.call(events)).status, 200)
  clock.advanceMs(200_000)
  t.equal((await broker.call(events)).status, 200)
  t.equal(broker.authority.issuedTokens.length, 1, 'reused at 200 s of 300')

  clock.advanceMs(75_000) // 275 s: past refresh-ahead (300 s − 30 s), still valid
  t.equal((await broker.call(events)).status, 200)
  t.equal(tokenUsed(broker, 2), broker.authority.issuedTokens[0], 'the old token serves the call that started the refresh')
  await until(() => broker.authority.issuedTokens.length === 2)
  t.equal((await broker.call(events)).status, 200)

  t.equal(broker.authority.issuedTokens.length, 2)
  t.equal(tokenUsed(broker, 3), broker.authority.issuedTokens[1], 'the next call uses the refreshed token')

  // Each token fetch names the request that started it, so a slow answer can be traced to its fetch.
  const lines = broker.logs.lines.map(line => JSON.parse(line) as { msg: string, reqId?: string })
  const requestIds = lines.filter(line => line.msg === 'request completed').map(line => line.reqId)
  const fetchedBy = lines.filter(line => line.msg === 'token fetched').map(line => line.reqId)
  t.equal(requestIds.length, 4)
  t.same(fetchedBy, [requestIds[0], requestIds[2]], 'the cold fetch by the first call, the refresh ahead by the third')
  const status = await (await broker.admin('/status')).text()
  const metrics = await (await broker.admin('/metrics')).text()
  t.notOk(requestIds.some(id => id !== undefined && (status.includes(id) || metrics.includes(id))), 'request ids stay out of /status and /metrics')
  t.match(metrics, /^helseid_broker_token_fetches_total\{tenant="granfjelldal",api="persontjenesten",outcome="issued"\} 2$/m, 'the fetch metric keeps its labels')
})

t.test('an expired token is never used: the call waits for a new one', async t => {
  const { broker, clock } = await startWithClock(t)
  await broker.call(events)

  clock.advanceMs(301_000)
  const response = await broker.call(events)

  t.equal(response.status, 200)
  t.equal(broker.authority.issuedTokens.length, 2)
  t.equal(tokenUsed(broker, 1), broker.authority.issuedTokens[1])
  t.ok(Number(decodeJwt(tokenUsed(broker, 1)).exp) * 1000 > clock.nowMs())
})

t.test('the API calling the token invalid drops it; an idempotent call is retried once with a new token', async t => {
  const { broker } = await startWithClock(t)
  await broker.call(events)

  await broker.authority.rotateSigningKey() // tokens signed with the old key no longer verify
  const response = await broker.call(events)

  t.equal(response.status, 200)
  const outcomes = broker.persontjenesten.received.map(r => r.outcome)
  t.equal(outcomes.length, 3)
  t.equal(outcomes[0], 'ok')
  t.match(outcomes[1], /^invalid_token/)
  t.equal(outcomes[2], 'ok')
  t.equal(broker.authority.issuedTokens.length, 2)
})

t.test('a POST answered invalid_token is not resent, but the next call gets a new token', async t => {
  const { broker } = await startWithClock(t)
  await broker.call(events)
  await broker.authority.rotateSigningKey()
  const post = {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'nin=12688510021'
  }
  const path = '/granfjelldal/persontjenesten/api/v3/restricted-access/person/get-by-nin?informationParts=Name'

  const refused = await broker.call(path, post)
  const next = await broker.call(path, post)

  t.equal(refused.status, 401, 'the upstream 401 passes through: a POST is not repeated behind the caller\'s back')
  t.equal(refused.headers.get('helseid-broker-error'), null)
  t.equal(next.status, 200)
  t.equal(broker.authority.issuedTokens.length, 2)
})
