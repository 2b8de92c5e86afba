// The network steps of doctor, each on the connection the step before opened: DNS, TCP, CONNECT tunnel, TLS, HTTP GET.

import { lookup } from 'node:dns/promises'
import { request } from 'node:http'
import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { checkServerIdentity, connect as connectTls, type PeerCertificate, type TLSSocket } from 'node:tls'

/** A step that did not get through; `code` is a system, OpenSSL or undici-style code, or `timeout`. */
export interface ProbeFailure {
  readonly ok: false
  readonly code: string
}

/** Resolves a name to its addresses as connections do (getaddrinfo); rejects with a `code` (ENOTFOUND…). */
export type LookupAll = (host: string) => Promise<readonly string[]>

/** The system resolver, as net.connect uses it. */
export const systemLookup: LookupAll = async host => (await lookup(host, { all: true })).map(entry => entry.address)

/** Every address of `host`, or the resolver's code (ENOTFOUND, EAI_AGAIN…) or `timeout`. */
export async function lookupAddresses (host: string, timeoutMs: number, lookupAll: LookupAll = systemLookup): Promise<{ readonly ok: true, readonly addresses: readonly string[] } | ProbeFailure> {
  try {
    const addresses = await withTimeout(lookupAll(host), timeoutMs)
    return { ok: true, addresses }
  } catch (error) {
    return { ok: false, code: errorCode(error) }
  }
}

/** Opens a TCP connection; on success the socket has an error listener and is the caller's to destroy. */
export async function openTcp (host: string, port: number, timeoutMs: number): Promise<{ readonly ok: true, readonly socket: Socket, readonly remoteAddress: string, readonly elapsedMs: number } | ProbeFailure> {
  const startedMs = performance.now()
  return await new Promise(resolve => {
    const socket = connectTcp({ host, port })
    const timer = setTimeout(() => { socket.destroy(); resolve({ ok: false, code: 'timeout' }) }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.on('error', () => {})
      resolve({ ok: true, socket, remoteAddress: socket.remoteAddress ?? host, elapsedMs: performance.now() - startedMs })
    })
    socket.once('error', error => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ ok: false, code: errorCode(error) })
    })
  })
}

/** A proxy's answer to CONNECT other than 2xx. */
export interface TunnelRefused {
  readonly ok: false
  readonly code: 'refused'
  readonly statusCode: number
  readonly statusText: string
}

/** Sends `CONNECT authority` (host:port) over a connection to the proxy; on 2xx the socket is the tunnel. */
export async function openTunnel (proxySocket: Socket, authority: string, authorization: string | undefined, timeoutMs: number): Promise<{ readonly ok: true, readonly socket: Socket, readonly statusCode: number, readonly elapsedMs: number } | TunnelRefused | ProbeFailure> {
  const startedMs = performance.now()
  return await new Promise(resolve => {
    const connectRequest = request({
      method: 'CONNECT',
      path: authority,
      setHost: false,
      headers: { host: authority, ...(authorization === undefined ? {} : { 'proxy-authorization': authorization }) },
      createConnection: () => proxySocket
    })
    const timer = setTimeout(() => { connectRequest.destroy(); resolve({ ok: false, code: 'timeout' }) }, timeoutMs)
    connectRequest.once('connect', (response, socket, head) => {
      clearTimeout(timer)
      const statusCode = response.statusCode ?? 0
      if (statusCode < 200 || statusCode > 299) {
        socket.destroy()
        resolve({ ok: false, code: 'refused', statusCode, statusText: response.statusMessage ?? '' })
        return
      }
      if (head.length > 0) socket.unshift(head)
      resolve({ ok: true, socket, statusCode, elapsedMs: performance.now() - startedMs })
    })
    connectRequest.once('error', error => {
      clearTimeout(timer)
      resolve({ ok: false, code: errorCode(error) })
    })
    connectRequest.end()
  })
}

/** What a completed handshake showed; trust and name are judged, never enforced, so that the report can show the certificate. */
export interface TlsFacts {
  readonly protocol: string
  readonly certificate: PeerCertificate | undefined
  /** OpenSSL's verdict on the chain (e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`), undefined when trusted. */
  readonly chainError?: string
  /** Why the certificate does not name the host, undefined when it does. */
  readonly nameError?: string
  readonly elapsedMs: number
}

/**
 * TLS handshake on an open socket with SNI `host`, trusting `ca` (undefined: Node's bundled roots).
 * On success the TLS socket is the caller's to destroy.
 */
export async function handshakeTls (socket: Socket, host: string, ca: readonly string[] | undefined, timeoutMs: number): Promise<{ readonly ok: true, readonly socket: TLSSocket, readonly facts: TlsFacts } | ProbeFailure> {
  const startedMs = performance.now()
  return await new Promise(resolve => {
    const tlsSocket = connectTls({
      socket,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(ca === undefined ? {} : { ca: [...ca] }),
      rejectUnauthorized: false,
      // The chain alone decides `authorized`: Node would otherwise report a wrong name as the chain's error,
      // and the name is judged below, on its own, for its own advice.
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['http/1.1']
    })
    const timer = setTimeout(() => { tlsSocket.destroy(); resolve({ ok: false, code: 'timeout' }) }, timeoutMs)
    tlsSocket.once('secureConnect', () => {
      clearTimeout(timer)
      tlsSocket.on('error', () => {})
      const certificate = tlsSocket.getPeerCertificate()
      const hasCertificate = certificate !== null && typeof certificate === 'object' && Object.keys(certificate).length > 0
      const chainError = tlsSocket.authorized ? undefined : String(tlsSocket.authorizationError ?? 'UNTRUSTED')
      const nameError = hasCertificate ? checkServerIdentity(host, certificate)?.message : 'no certificate presented'
      resolve({
        ok: true,
        socket: tlsSocket,
        facts: {
          protocol: tlsSocket.getProtocol() ?? 'TLS',
          certificate: hasCertificate ? certificate : undefined,
          ...(chainError === undefined ? {} : { chainError }),
          ...(nameError === undefined ? {} : { nameError }),
          elapsedMs: performance.now() - startedMs
        }
      })
    })
    tlsSocket.once('error', error => {
      clearTimeout(timer)
      tlsSocket.destroy()
      resolve({ ok: false, code: errorCode(error) })
    })
  })
}

/** An HTTP response as doctor reads it. */
export interface HttpAnswer {
  readonly ok: true
  readonly status: number
  readonly statusText: string
  /** The `Date` header, if any. */
  readonly date?: string
  /** Up to `maxBodyBytes` of the body ('' when 0). */
  readonly body: string
  /** Local clock (the injected one) when the request was sent and when the response headers arrived. */
  readonly sentAtMs: number
  readonly answeredAtMs: number
  readonly elapsedMs: number
}

export interface HttpGetOptions {
  readonly hostHeader: string
  readonly path: string
  readonly timeoutMs: number
  readonly maxBodyBytes: number
  readonly nowMs: () => number
}

/** Sends one GET over an open (TLS or plain) connection and reads the status and, if asked, the body. */
export async function sendGet (socket: Socket, options: HttpGetOptions): Promise<HttpAnswer | ProbeFailure> {
  const startedMs = performance.now()
  const sentAtMs = options.nowMs()
  return await new Promise(resolve => {
    let isSettled = false
    const settle = (result: HttpAnswer | ProbeFailure): void => {
      if (isSettled) return
      isSettled = true
      clearTimeout(timer)
      resolve(result)
    }
    const getRequest = request({
      method: 'GET',
      path: options.path,
      setHost: false,
      headers: { host: options.hostHeader, accept: 'application/json, */*', 'user-agent': 'helseid-broker-doctor', connection: 'close' },
      createConnection: () => socket
    }, response => {
      const answeredAtMs = options.nowMs()
      const chunks: Buffer[] = []
      let size = 0
      const finish = (): void => {
        const date = response.headers.date
        settle({
          ok: true,
          status: response.statusCode ?? 0,
          statusText: response.statusMessage ?? '',
          ...(date === undefined ? {} : { date }),
          body: Buffer.concat(chunks).toString('utf8'),
          sentAtMs,
          answeredAtMs,
          elapsedMs: performance.now() - startedMs
        })
        response.destroy()
      }
      if (options.maxBodyBytes === 0) { finish(); return }
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (size >= options.maxBodyBytes) finish()
      })
      response.once('end', finish)
      response.once('error', error => { settle({ ok: false, code: errorCode(error) }) })
    })
    const timer = setTimeout(() => { getRequest.destroy(); settle({ ok: false, code: 'timeout' }) }, options.timeoutMs)
    getRequest.once('error', error => { settle({ ok: false, code: errorCode(error) }) })
    getRequest.end()
  })
}

/** The most specific code an error carries: `code`, the first of an AggregateError's (Happy Eyeballs), else its name. */
export function errorCode (error: unknown): string {
  if (typeof error !== 'object' || error === null) return 'error'
  const { code, name, errors } = error as { code?: unknown, name?: unknown, errors?: unknown }
  if (typeof code === 'string' && code !== '') return code
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0])
  if (name === 'TimeoutError') return 'timeout'
  return typeof name === 'string' ? name : 'error'
}

async function withTimeout<T> (promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(Object.assign(new Error('timed out'), { code: 'timeout' })) }, timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
