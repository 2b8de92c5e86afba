// Guards every request passes before anything else: the client must be local (without callers),
// the Host must be a local name (DNS rebinding), and no browser may call unless its origin is allowed.

import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import { BrokerError } from '../errors.ts'
import { isLoopbackHost } from '../http/urls.ts'

export interface GuardOptions {
  /** Host names besides the loopback names (listen hosts, listen.hostnames). */
  readonly hostnames: readonly string[]
  readonly allowedOrigins: readonly string[]
  /** True when no callers are configured: only loopback clients are served. */
  readonly isLoopbackOnly: boolean
}

/** Checks one request; throws a BrokerError naming what was refused. */
export type RequestGuard = (headers: IncomingHttpHeaders, remoteAddress: string | undefined, localPort: number | undefined) => void

/** Creates the guard for one listener. */
export function createRequestGuard (options: GuardOptions): RequestGuard {
  const hostnames = new Set(['localhost', '127.0.0.1', '::1', ...options.hostnames].map(name => name.toLowerCase()))
  const origins = new Set(options.allowedOrigins.map(origin => origin.toLowerCase()))
  // A client sends the same Host on every call: the last one that passed, with its port, is not parsed again.
  let lastAllowedHost: { host: string, localPort: number | undefined } | undefined
  return (headers, remoteAddress, localPort) => {
    if (options.isLoopbackOnly && !isLoopbackAddress(remoteAddress)) {
      throw new BrokerError('BROKER_CLIENT_NOT_LOCAL', 'without configured callers this broker serves this machine only')
    }
    const host = headers.host
    if (host === undefined || host !== lastAllowedHost?.host || localPort !== lastAllowedHost.localPort) {
      checkHost(host, hostnames, localPort)
      if (host !== undefined) lastAllowedHost = { host, localPort }
    }
    const origin = headers.origin
    const site = headers['sec-fetch-site']
    if (origin !== undefined && !origins.has(origin.toLowerCase())) {
      throw new BrokerError('BROKER_BROWSER_REFUSED', 'requests from web pages are refused (Origin header); allow the origin under browser.allowedOrigins if it is meant to call')
    }
    if (origin === undefined && (site === 'cross-site' || site === 'same-site')) {
      throw new BrokerError('BROKER_BROWSER_REFUSED', `requests from web pages are refused (Sec-Fetch-Site: ${site})`)
    }
  }
}

function checkHost (host: string | undefined, hostnames: ReadonlySet<string>, localPort: number | undefined): void {
  // HTTP/1.0 clients may send no Host; a browser always sends one, so rebinding cannot hide here.
  if (host === undefined) return
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(host)
  const name = match?.[1]?.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  const port = match?.[2]
  const isKnownName = name !== undefined && (hostnames.has(name) || (isIP(name) !== 0 && isLoopbackHost(name)))
  if (!isKnownName || (port !== undefined && localPort !== undefined && Number(port) !== localPort)) {
    throw new BrokerError('BROKER_HOST_NOT_ALLOWED', 'the Host header does not name this broker; add the name to listen.hostnames if it is meant to')
  }
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress (address: string | undefined): boolean {
  if (address === undefined) return false
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address
  return plain === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(plain)
}
