// A CONNECT proxy on loopback for egress tests: it records every tunnel asked for and pipes it to the target.

import type { Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'

export interface ConnectProxyOptions {
  /**
   * What the proxy does when the target cannot be reached: 'hang-up' closes the client's socket (default),
   * 'bad-gateway' answers HTTP 502 Bad Gateway first, as Squid does.
   */
  readonly unreachable?: 'hang-up' | 'bad-gateway'
}

export interface ConnectProxy {
  /** http://127.0.0.1:port, as egress.proxy or HTTPS_PROXY would hold it. */
  readonly url: string
  readonly port: number
  /** The target of every CONNECT, as host:port, in the order asked for. */
  readonly tunnels: string[]
}

/** Starts the proxy on 127.0.0.1; the test's teardown destroys the open tunnels and closes it. */
export async function startConnectProxy (t: Test, options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const answersBadGateway = options.unreachable === 'bad-gateway'
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((_request, response) => { response.writeHead(405).end() })
  server.on('connect', (request, clientSocket: Socket, head: Buffer) => {
    const target = request.url ?? ''
    tunnels.push(target)
    const separator = target.lastIndexOf(':')
    let isConnected = false
    const upstream = connect(Number(target.slice(separator + 1)), target.slice(0, separator).replace(/^\[(.*)\]$/, '$1'))
    upstream.once('connect', () => {
      isConnected = true
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(clientSocket)
      clientSocket.pipe(upstream)
    })
    upstream.on('error', () => {
      if (isConnected || !answersBadGateway) clientSocket.destroy()
      else clientSocket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n')
    })
    clientSocket.on('error', () => { upstream.destroy() })
    for (const socket of [clientSocket, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    // Tunnels are detached from the HTTP server, so they are destroyed before it is closed.
    for (const socket of sockets) socket.destroy()
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port, tunnels }
}
