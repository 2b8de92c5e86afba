// URL rules shared by config and protocol code: https everywhere, http only on loopback.

import { isIPv4, type AddressInfo } from 'node:net'

/** True for a host name that can only mean this machine. */
export function isLoopbackHost (hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'))
}

/** True for https URLs, and http URLs whose host is loopback. */
export function isAllowedUrl (value: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  if (url.protocol === 'https:') return true
  return url.protocol === 'http:' && isLoopbackHost(url.hostname)
}

/** 'http://host:port' of a listening server, with an IPv6 host in brackets. @throws TypeError when not on TCP. */
export function listenOrigin (address: AddressInfo | string | null, host: string): string {
  if (address === null || typeof address === 'string') throw new TypeError('server is not listening on a TCP port')
  const shownHost = host.includes(':') ? `[${host}]` : host
  return `http://${shownHost}:${address.port}`
}
