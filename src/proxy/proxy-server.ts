// The proxy listener: a plain node:http server with the broker's limits, its parser errors answered as
// problem+json, and a drain that refuses new requests while in-flight ones finish.

import { createServer, type Server } from 'node:http'
import type { ListenAddress, LimitsConfig } from '../config/config.ts'
import { listenOrigin } from '../http/urls.ts'
import { handleClientError } from '../security/client-error.ts'
import { createProxyHandler, type ProxyHandlerOptions } from './proxy-handler.ts'

/** The proxy listener, built but not yet listening. */
export interface ProxyServer {
  readonly server: Server
  /** Listens; resolves with the origin callers use (`http://127.0.0.1:8080`). */
  readonly listen: (address: ListenAddress) => Promise<string>
  /**
   * Stops accepting; requests that arrive on open connections are refused with BROKER_SHUTTING_DOWN;
   * resolves when the last connection has closed. Idle kept-alive connections are closed as they idle.
   */
  readonly close: () => Promise<void>
  /** Cuts every connection, busy or not (the drain's deadline has passed). */
  readonly closeAllConnections: () => void
}

/** Creates the proxy server with the limits of `limits`. */
export function createProxyServer (limits: LimitsConfig, options: Omit<ProxyHandlerOptions, 'isDraining'>): ProxyServer {
  let isDraining = false
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: Math.min(limits.requestTimeoutMs, 60_000),
    keepAliveTimeout: limits.idleTimeoutMs,
    // Node checks request timeouts on this interval; the default (30 s) would let slow senders linger.
    connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(limits.requestTimeoutMs / 4)))
  }, createProxyHandler({ ...options, isDraining: () => isDraining }))
  server.on('clientError', handleClientError)

  let closing: Promise<void> | undefined
  return {
    server,
    listen: async address => await new Promise<string>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: address.host, port: address.port }, () => {
        server.off('error', reject)
        resolve(listenOrigin(server.address(), address.host))
      })
    }),
    close: async () => {
      isDraining = true
      closing ??= new Promise<void>(resolve => {
        if (!server.listening) { resolve(); return }
        // A kept-alive connection whose last request has finished would otherwise hold the close open until it idles out.
        const idleSweep = setInterval(() => { server.closeIdleConnections() }, 50)
        server.close(() => { clearInterval(idleSweep); resolve() })
        server.closeIdleConnections()
      })
      await closing
    },
    closeAllConnections: () => { server.closeAllConnections() }
  }
}
