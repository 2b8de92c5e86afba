// How doctor reaches a host: direct, or through the egress proxy exactly as the broker's undici dispatcher would (NO_PROXY included).

import type { EgressRoute } from '../http/egress.ts'
import type { DoctorTarget } from './doctor-targets.ts'

/** The egress proxy as doctor talks to it. */
export interface ProxyEndpoint {
  readonly host: string
  readonly port: number
  readonly isTls: boolean
  /** `host:port`, never with credentials. */
  readonly label: string
  /** `egress.proxy`, or the environment variable it came from. */
  readonly source: string
  /** `Basic …` when the proxy URL carries user:password (possible from HTTPS_PROXY only). */
  readonly authorization?: string
}

export type TargetRoute =
  | { readonly kind: 'direct', readonly noProxyEntry?: string }
  | { readonly kind: 'proxy', readonly proxy: ProxyEndpoint }

/** Parses the proxy URL of an egress route. */
export function proxyEndpoint (route: EgressRoute): ProxyEndpoint {
  const url = new URL(route.proxyUrl)
  const isTls = url.protocol === 'https:'
  const port = url.port === '' ? (isTls ? 443 : 80) : Number(url.port)
  const authorization = url.username === '' && url.password === ''
    ? undefined
    : `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    isTls,
    label: `${url.hostname}:${port}`,
    source: route.source,
    ...(authorization === undefined ? {} : { authorization })
  }
}

/** Direct when there is no proxy or NO_PROXY names the host (the entry is kept for the report), else through the proxy. */
export function routeFor (target: DoctorTarget, egress: EgressRoute | undefined): TargetRoute {
  if (egress === undefined) return { kind: 'direct' }
  const hostname = target.label.replace(/:\d+$/, '').toLowerCase()
  const entry = noProxyEntryFor(hostname, target.port, egress.noProxy)
  return entry === undefined ? { kind: 'proxy', proxy: proxyEndpoint(egress) } : { kind: 'direct', noProxyEntry: entry }
}

/**
 * The NO_PROXY entry that keeps `hostname` (IPv6 in brackets, lower case) off the proxy, matched as undici's
 * EnvHttpProxyAgent does: `host[:port]`, a leading `.` or `*.` ignored, subdomains included.
 */
export function noProxyEntryFor (hostname: string, port: number, noProxy: string): string | undefined {
  for (const entry of noProxy.split(/[,\s]/)) {
    if (entry === '') continue
    const parsed = /^(.+):(\d+)$/.exec(entry)
    const entryHost = (parsed?.[1] ?? entry).replace(/^\*?\./, '').toLowerCase()
    const entryPort = parsed?.[2] === undefined ? 0 : Number(parsed[2])
    if (entryPort !== 0 && entryPort !== port) continue
    if (hostname === entryHost || hostname.endsWith(`.${entryHost}`)) return entry
  }
  return undefined
}
