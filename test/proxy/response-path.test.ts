// The way back: upstream answers of every size reach the caller unchanged, a broken answer never
// reaches it as a whole one, and a draining broker refuses new requests on open connections.

import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { listenOrigin } from '../../src/http/urls.ts'
import { startTestBroker } from '../helpers/test-broker.ts'

const path = '/granfjelldal/persontjenesten/api/v3/bulk'

/** A loopback upstream answering every request with `answer`; what it was asked is kept in `seen`. */
async function startUpstream (t: Test, answer: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ origin: string, seen: Array<{ method: string, hasProof: boolean, isAborted: () => boolean }> }> {
  const seen: Array<{ method: string, hasProof: boolean, isAborted: () => boolean }> = []
  const server = createServer((request, response) => {
    let isAborted = false
    response.on('close', () => { isAborted = !response.writableFinished })
    seen.push({ method: request.method ?? '', hasProof: typeof request.headers.dpop === 'string', isAborted: () => isAborted })
    answer(request, response)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { origin: listenOrigin(server.address(), '127.0.0.1'), seen }
}

/** Sends `text` on a fresh connection and resolves with everything that comes back until the broker closes it. */
async function rawExchange (origin: string, text: string): Promise<string> {
  const { port } = new URL(origin)
  const socket = connect(Number(port), '127.0.0.1')
  socket.setEncoding('latin1')
  let received = ''
  socket.on('data', chunk => { received += String(chunk) })
  socket.write(text)
  await once(socket, 'close')
  return received
}

/** The request lines the broker logged for paths ending in `suffix`. */
function requestLines (lines: readonly string[], suffix: string): Array<Record<string, unknown>> {
  return lines.map(line => JSON.parse(line) as Record<string, unknown>)
    .filter(line => line.msg === 'request completed' && String((line.req as { path?: string } | undefined)?.path ?? '').endsWith(suffix))
}

t.test('answers small and large, with and without a length, reach the caller byte for byte', async t => {
  const bodies = new Map([
    ['/small', randomBytes(3000)],
    ['/large', randomBytes(3 * 1024 * 1024)],
    ['/chunked', randomBytes(200 * 1024)]
  ])
  const upstream = await startUpstream(t, (request, response) => {
    const suffix = request.url?.replace(/^.*\/bulk/, '') ?? ''
    const body = bodies.get(suffix) ?? Buffer.alloc(0)
    if (suffix === '/chunked') {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': 'yes' })
      response.write(body.subarray(0, 1000))
      setTimeout(() => { response.end(body.subarray(1000)) }, 20)
      return
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'x-upstream': 'yes' })
    response.end(body)
  })
  const broker = await startTestBroker(t, { apiUrl: upstream.origin })

  for (const [suffix, body] of bodies) {
    const response = await broker.call(`${path}${suffix}`)
    const received = Buffer.from(await response.arrayBuffer())
    t.equal(response.status, 200, `${suffix}: status`)
    t.equal(response.headers.get('x-upstream'), 'yes', `${suffix}: upstream headers pass`)
    t.equal(received.length, body.length, `${suffix}: length`)
    t.equal(createHash('sha256').update(received).digest('hex'), createHash('sha256').update(body).digest('hex'), `${suffix}: same bytes`)
  }
  // A raw socket, because an HTTP client never reads a body after HEAD: every byte after the head must be absent.
  const headBytes = await rawExchange(broker.broker.proxyUrl, `HEAD ${path}/large HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  const [head = '', ...after] = headBytes.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 200 /)
  t.match(head, new RegExp(`content-length: ${3 * 1024 * 1024}`, 'i'), 'HEAD keeps the length the upstream gave')
  t.equal(after.join(''), '', 'HEAD has no body')
  t.ok(upstream.seen.every(request => request.hasProof), 'every upstream call carried a proof')
})

t.test('an answer that breaks off: a small one becomes a 502, a large one a cut connection, and the broker keeps serving', async t => {
  const upstream = await startUpstream(t, (request, response) => {
    if (request.url?.endsWith('/fine') === true) {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
      response.end('{}')
      return
    }
    const announced = request.url?.endsWith('/large-broken') === true ? 1024 * 1024 : 4000
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(announced) })
    response.write(Buffer.alloc(1500, 0x20))
    setTimeout(() => { response.socket?.destroy() }, 20)
  })
  // One upstream slot: every later call proves the earlier one gave its slot back.
  const broker = await startTestBroker(t, { apiUrl: upstream.origin, limits: { maxConcurrentUpstream: 1 } })

  const small = await broker.call(`${path}/small-broken`)
  t.equal(small.status, 502, 'a small answer is read whole before anything is sent: the caller gets a clean error')
  t.equal(small.headers.get('helseid-broker-error'), 'BROKER_UPSTREAM_UNREACHABLE')
  t.match(await small.json(), { detail: /answered 200 but its body broke off .*may have been carried out/ }, 'the caller is told the call may have happened')

  const large = await broker.call(`${path}/large-broken`)
  t.equal(large.status, 200, 'a large answer streams: its status is sent before the break')
  await t.rejects(large.arrayBuffer(), 'the caller sees the cut, never a short body taken for whole')

  const after = await broker.call(`${path}/fine`)
  t.equal(after.status, 200, 'the broker keeps serving, and the slot of the broken call is free again')
  t.same(await after.json(), {})
  t.match(requestLines(broker.logs.lines, '/large-broken'), [{ status: 200, incomplete: true }], 'the request line says the answer did not arrive whole')
  t.match(requestLines(broker.logs.lines, '/fine'), [{ status: 200 }])
  t.notOk('incomplete' in (requestLines(broker.logs.lines, '/fine')[0] ?? {}), 'a whole answer is not marked')
})

t.test('a caller that hangs up cancels its upstream call, frees its slot and is recorded as 499', async t => {
  let answered = (): void => {}
  const upstreamReached = new Promise<void>(resolve => { answered = resolve })
  const upstream = await startUpstream(t, (request, response) => {
    if (request.url?.endsWith('/fine') === true) {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
      response.end('{}')
      return
    }
    answered() // and never answer
  })
  const broker = await startTestBroker(t, { apiUrl: upstream.origin, limits: { maxConcurrentUpstream: 1 } })

  const controller = new AbortController()
  const call = broker.call(`${path}/slow`, { signal: controller.signal })
  await upstreamReached
  controller.abort()
  await t.rejects(call)
  for (let waited = 0; waited < 2000 && upstream.seen[0]?.isAborted() !== true; waited += 20) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(upstream.seen[0]?.isAborted(), true, 'the upstream request was cancelled')
  const after = await broker.call(`${path}/fine`)
  t.equal(after.status, 200, 'the slot is free again')
  t.match(requestLines(broker.logs.lines, '/slow'), [{ status: 499, incomplete: true, tenant: 'granfjelldal' }], 'the abandoned request is recorded as 499, not as a success')
})

t.test('a caller that hangs up while its token is fetched sends nothing upstream', async t => {
  const upstream = await startUpstream(t, (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
    response.end('{}')
  })
  const broker = await startTestBroker(t, { apiUrl: upstream.origin, limits: { maxConcurrentUpstream: 1 } })
  broker.authority.setTokenEndpointMode('slow', 400)

  const controller = new AbortController()
  const call = broker.call(`${path}/cold`, { signal: controller.signal })
  setTimeout(() => { controller.abort() }, 100)
  await t.rejects(call)
  // The token fetch goes on (other calls may share it); once it is done, the abandoned call must stop there.
  for (let waited = 0; waited < 3000 && !broker.authority.tokenRequests.some(entry => entry.outcome === 'issued'); waited += 20) await new Promise(resolve => setTimeout(resolve, 20))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(upstream.seen.length, 0, 'nothing went upstream for the caller that had gone')
  broker.authority.setTokenEndpointMode('ok')
  const after = await broker.call(`${path}/fine`)
  t.equal(after.status, 200, 'the slot is free again')
  t.equal(upstream.seen.length, 1)
})

t.test('while draining, a new request on an open connection gets 503 BROKER_SHUTTING_DOWN and the one in flight finishes', async t => {
  const upstream = await startUpstream(t, (_request, response) => {
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' })
      response.end('{}')
    }, 400)
  })
  const broker = await startTestBroker(t, { apiUrl: upstream.origin })
  const { port } = new URL(broker.broker.proxyUrl)
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', chunk => { received += String(chunk) })
  const ended = once(socket, 'close')
  const request = `GET ${path}/slow HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`

  socket.write(request)
  while (upstream.seen.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
  const drained = broker.broker.close()
  socket.write(request)
  await drained
  await ended

  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(match => match[1])
  t.same(statuses, ['200', '503'], 'the request in flight finishes; the next one is refused')
  t.match(received, /helseid-broker-error: BROKER_SHUTTING_DOWN/i)
  t.match(received, /connection: close/i, 'the connection is closed after the refusal')
  t.match(received, /retry-after: 1/i)
  t.equal(upstream.seen.length, 1, 'the refused request never went upstream')
})

t.test('a drain that runs out of time cuts the calls still in flight and closes', async t => {
  const upstream = await startUpstream(t, () => { /* never answers */ })
  const broker = await startTestBroker(t, { apiUrl: upstream.origin, broker: { drainTimeoutMs: 300 } })
  const cut = t.rejects(broker.call(`${path}/stuck`), 'the call still in flight is cut')
  while (upstream.seen.length === 0) await new Promise(resolve => setTimeout(resolve, 10))

  const startedAt = Date.now()
  await broker.broker.close()
  const tookMs = Date.now() - startedAt

  t.ok(tookMs >= 250 && tookMs < 5000, `close waited for the drain bound and no longer (${tookMs} ms)`)
  await cut
  t.match(broker.logs.text(), /"msg":"drain timed out; closing remaining connections"/)
  for (let waited = 0; waited < 2000 && upstream.seen[0]?.isAborted() !== true; waited += 20) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(upstream.seen[0]?.isAborted(), true, 'its upstream call is cancelled too')
})
