import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startTestBroker } from '../helpers/test-broker.ts'

/** A minimal CONNECT proxy on loopback that records every tunnel it opens. */
async function startConnectProxy (t: Test): Promise<{ url: string, tunnels: string[] }> {
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((_request, response) => { response.writeHead(405).end() })
  server.on('connect', (request, clientSocket: Socket, head: Buffer) => {
    const target = request.url ?? ''
    tunnels.push(target)
    const [host, port] = target.split(':')
    const upstream = connect(Number(port), host ?? '127.0.0.1', () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(clientSocket)
      clientSocket.pipe(upstream)
    })
    for (const socket of [clientSocket, upstream]) {
      sockets.add(socket)
      socket.on('error', () => { clientSocket.destroy(); upstream.destroy() })
      socket.on('close', () => sockets.delete(socket))
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tunnels }
}

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
