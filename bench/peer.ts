// A child process running one peer of the benchmark (fake upstream, @fastify/http-proxy or the broker), steered over IPC,
// so that the load generator in the parent never shares an event loop with the proxy it measures. Each peer's modules
// are imported only when that peer starts, so that a child's RSS holds nothing but its own peer.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { listenOrigin } from '../src/http/urls.ts'
import { bigPath, personBody } from './lib/fixtures.ts'
import type { ChildReply, PeerSpec, ParentMessage } from './lib/protocol.ts'

type Stop = () => Promise<void>
/** A started peer: where it listens, how to stop it, and notes for the report. */
interface Started { readonly url: string, readonly stop: Stop, readonly notes: readonly string[] }

const send = (message: ChildReply): void => { process.send?.(message) }

let stopPeer: Stop | undefined
let isStopping = false
const watched = new Set<number>()
// The parent is gone (crashed or killed): never outlive it, nor let what it started (nginx) outlive it.
process.on('disconnect', () => {
  if (!isStopping) {
    for (const pid of watched) {
      try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
    }
  }
  process.exit(0)
})

process.on('message', (message: ParentMessage) => {
  void handle(message).catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })
  })
})

async function handle (message: ParentMessage): Promise<void> {
  switch (message.type) {
    case 'start': {
      const started = await start(message.spec)
      stopPeer = started.stop
      send({ type: 'ready', url: started.url, pid: process.pid, notes: started.notes })
      return
    }
    case 'mark':
      // CLOCK_MONOTONIC in µs: the clock of V8's CPU profile timestamps.
      send({ type: 'mark', monotonicUs: Number(process.hrtime.bigint() / 1000n), memory: process.memoryUsage() })
      return
    case 'watch':
      watched.add(message.pid)
      return
    case 'unwatch':
      watched.delete(message.pid)
      return
    case 'stop':
      isStopping = true
      await stopPeer?.()
      // Exit normally so that --cpu-prof writes its profile.
      process.disconnect()
      process.exit(0)
  }
}

async function start (spec: PeerSpec): Promise<Started> {
  switch (spec.kind) {
    case 'upstream': return await startUpstream()
    case 'fastify-proxy': return await startFastifyProxy(spec.upstream, spec.authorization)
    case 'node-proxy': return await startNodeProxy(spec.upstream, spec.authorization, spec.client)
    case 'broker': return await startBenchBroker(spec.config, spec.source)
  }
}

/** The fake Persontjenesten: plain node:http, keep-alive, a precomputed body, no token checks. */
async function startUpstream (): Promise<Started> {
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const server = createServer({ keepAliveTimeout: 65_000 }, (request: IncomingMessage, response: ServerResponse) => {
    request.resume()
    const url = request.url ?? '/'
    if (url.startsWith(bigPath)) {
      void streamBig(response, chunk, Number(new URL(url, 'http://x').searchParams.get('mb') ?? '50'))
      return
    }
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': personBody.length })
    response.end(personBody)
  })
  server.headersTimeout = 0
  server.requestTimeout = 0
  return await serveOnLoopback(server)
}

/** `mb` MiB of JSON-ish bytes, written with backpressure (the upstream never buffers more than one chunk). */
async function streamBig (response: ServerResponse, chunk: Buffer, mb: number): Promise<void> {
  const total = Math.max(1, mb) * 1024 * 1024
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
  for (let sent = 0; sent < total; sent += chunk.length) {
    const slice = total - sent < chunk.length ? chunk.subarray(0, total - sent) : chunk
    if (!response.write(slice)) {
      await new Promise<void>(resolve => {
        const done = (): void => { response.off('drain', done); response.off('close', done); resolve() }
        response.on('drain', done)
        response.on('close', done)
      })
      if (response.destroyed) return
    }
  }
  response.end()
}

/** @fastify/http-proxy (on @fastify/reply-from, undici) adding a static Authorization and Api-Version header. */
async function startFastifyProxy (upstream: string, authorization: string): Promise<Started> {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyHttpProxy } = await import('@fastify/http-proxy')
  const app = Fastify({ logger: false })
  await app.register(fastifyHttpProxy, {
    upstream,
    replyOptions: {
      rewriteRequestHeaders: (_request, headers) => ({ ...headers, authorization, 'api-version': '3' })
    }
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { url, notes: [], stop: async () => { await app.close() } }
}

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host'])

function withoutHopByHop (headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !hopByHop.has(name)) out[name] = value
  }
  return out
}

/**
 * The smallest reasonable Node proxy: node:http in, undici out, a static Authorization header, no framework.
 * `request`: undici request() and the body piped to the response (what the broker does, minus Fastify);
 * `stream`: undici stream() writing straight into the response.
 */
async function startNodeProxy (upstream: string, authorization: string, client: 'request' | 'stream'): Promise<Started> {
  const { Agent } = await import('undici')
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 })
  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
    const headers = { ...withoutHopByHop(request.headers), authorization, 'api-version': '3' }
    const method = (request.method ?? 'GET') as 'GET'
    const body = method === 'GET' || method === 'HEAD' ? null : request
    const fail = (): void => {
      if (!response.headersSent) response.writeHead(502)
      response.end()
    }
    if (client === 'stream') {
      agent.stream({ origin: upstream, path: request.url ?? '/', method, headers, body }, ({ statusCode, headers: upstreamHeaders }) => {
        response.writeHead(statusCode, withoutHopByHop(upstreamHeaders))
        return response
      }).catch(fail)
      return
    }
    agent.request({ origin: upstream, path: request.url ?? '/', method, headers, body }).then(answer => {
      response.writeHead(answer.statusCode, withoutHopByHop(answer.headers))
      answer.body.pipe(response)
    }, fail)
  })
  return await serveOnLoopback(server, async () => { await agent.close() })
}

/** Listens on an ephemeral loopback port; stopping cuts every connection, closes, then runs `afterClose`. */
async function serveOnLoopback (server: Server, afterClose: Stop = async () => {}): Promise<Started> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: listenOrigin(server.address(), '127.0.0.1'),
    notes: [],
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
      await afterClose()
    }
  }
}

/** The broker as `serve` runs it: config parsed by parseConfig, key file loaded, JSON log lines on stdout. */
async function startBenchBroker (raw: unknown, source: string): Promise<Started> {
  const { startBroker } = await import('../src/app.ts')
  const { parseConfig } = await import('../src/config/parse-config.ts')
  const { loadTenantCredentials } = await import('../src/keys/tenant-keys.ts')
  const { createLogger } = await import('../src/logging.ts')
  const config = parseConfig(raw, source)
  const credentials = await loadTenantCredentials(config)
  // stdout of this child is /dev/null: the broker pays for building and writing every log line, the disk does not.
  const logger = createLogger(config.logging.level)
  const broker = await startBroker(config, credentials, logger, { env: {} })
  const notes = [`limits: ${JSON.stringify(config.limits)}`]
  return { url: broker.proxyUrl, notes, stop: async () => { await broker.close() } }
}
