// One host, step by step: DNS, TCP, CONNECT (through a proxy), TLS, HTTP; each row says what happened, each blockage what to ask IT.

import { isIP, type Socket } from 'node:net'
import type { PeerCertificate } from 'node:tls'
import { parseMetadata } from '../helseid/discovery.ts'
import type { DoctorRow, StepName, StepStatus } from './doctor-report.ts'
import type { TargetRoute } from './doctor-route.ts'
import type { DoctorTarget } from './doctor-targets.ts'
import { handshakeTls, lookupAddresses, openTcp, openTunnel, sendGet, type HttpAnswer, type LookupAll, type TlsFacts } from './network-probes.ts'

export interface HostCheckOptions {
  readonly target: DoctorTarget
  readonly route: TargetRoute
  /** Trusted CA certificates (PEM) for TLS, undefined for Node's bundled roots. */
  readonly ca: readonly string[] | undefined
  /** Whether `ca` holds certificates from egress.caFile (changes the advice for untrusted certificates). */
  readonly hasCaFile: boolean
  /** The issuer as configured, to check the discovery document against. */
  readonly issuer: string
  readonly stepTimeoutMs: number
  readonly httpTimeoutMs: number
  readonly nowMs: () => number
  /** Name resolution; default the system resolver. */
  readonly lookup?: LookupAll
}

export interface HostCheck {
  readonly rows: readonly DoctorRow[]
  readonly askIt: readonly string[]
  /** The HTTP answer, when one came (the issuer's carries the Date header for the clock check). */
  readonly answer?: HttpAnswer
}

const untrustedCodes = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA'
])
const notTlsCodes = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_RECORD_LAYER_FAILURE'])
const expiryWarningDays = 14
const maxDiscoveryBytes = 1024 * 1024

/** Runs every step for one host; a failed step marks the rest SKIP. Never throws for network trouble. */
export async function checkHost (options: HostCheckOptions): Promise<HostCheck> {
  const { target, route } = options
  const rows: DoctorRow[] = []
  const askIt: string[] = []
  const sockets: Socket[] = []
  const steps: StepName[] = ['DNS', 'TCP', ...(route.kind === 'proxy' ? ['CONNECT' as const] : []), 'TLS', 'HTTP']
  const add = (step: StepName, status: StepStatus, detail: string): void => { rows.push({ subject: target.label, step, status, detail }) }
  const fail = (step: StepName, detail: string, ask?: string): HostCheck => {
    add(step, 'FAIL', detail)
    if (ask !== undefined) askIt.push(ask)
    for (const later of steps.slice(steps.indexOf(step) + 1)) add(later, 'SKIP', `not tried: ${step} failed`)
    return { rows, askIt }
  }
  const proxy = route.kind === 'proxy' ? route.proxy : undefined
  const via = proxy === undefined ? (route.kind === 'direct' && route.noProxyEntry !== undefined ? `direct (NO_PROXY "${route.noProxyEntry}"): ` : '') : `via proxy ${proxy.label}: `
  const through = proxy === undefined ? '' : `, through proxy ${proxy.label}`
  const directNote = route.kind === 'direct' && route.noProxyEntry !== undefined ? ` (directly: NO_PROXY entry "${route.noProxyEntry}" keeps it off the proxy)` : ''
  const secondsOf = (ms: number): string => `${Math.round(ms / 100) / 10} s`

  try {
    const dialHost = proxy?.host ?? target.host
    const dialPort = proxy?.port ?? target.port
    const dialLabel = proxy?.label ?? target.label

    const dns = await lookupAddresses(dialHost, options.stepTimeoutMs, options.lookup)
    if (!dns.ok) {
      return fail('DNS', `${via}${dialHost} does not resolve (${dns.code})`, proxy === undefined
        ? `Ask IT to fix DNS: ${dialHost} does not resolve on this server (${dns.code}); this server also needs ${target.label} (TCP) open`
        : `Ask IT to fix DNS: the egress proxy ${dialHost} (${proxy.source}) does not resolve on this server (${dns.code})`)
    }
    add('DNS', 'OK', `${via}${isIP(dialHost) === 0 ? `${dialHost} → ${dns.addresses.join(', ')}` : `${dialHost} (an IP address, no lookup)`}`)

    const tcp = await openTcp(dialHost, dialPort, options.stepTimeoutMs)
    if (!tcp.ok) {
      return fail('TCP', `${via}cannot connect to ${dialLabel}: ${describeTcpFailure(tcp.code, secondsOf(options.stepTimeoutMs))}`, proxy === undefined
        ? `Ask IT to open: ${target.label} (TCP) from this server${directNote}`
        : `Ask IT to open: ${proxy.label} (TCP) from this server (the egress proxy, ${proxy.source})`)
    }
    sockets.push(tcp.socket)
    add('TCP', 'OK', `${via}connected to ${formatAddress(tcp.remoteAddress)}:${dialPort} in ${Math.round(tcp.elapsedMs)} ms`)

    let channel: Socket = tcp.socket
    if (proxy !== undefined) {
      if (proxy.isTls) {
        const proxyTls = await handshakeTls(channel, proxy.host, options.ca, options.stepTimeoutMs)
        if (!proxyTls.ok || proxyTls.facts.chainError !== undefined || proxyTls.facts.nameError !== undefined) {
          const reason = proxyTls.ok ? proxyTls.facts.chainError ?? proxyTls.facts.nameError ?? '' : proxyTls.code
          return fail('CONNECT', `TLS to the proxy ${proxy.label} failed (${reason})`, `Ask IT which CA signs the egress proxy ${proxy.label}'s certificate, and put it in egress.caFile (${reason})`)
        }
        sockets.push(proxyTls.socket)
        channel = proxyTls.socket
      }
      const tunnel = await openTunnel(channel, target.label, proxy.authorization, options.stepTimeoutMs)
      if (!tunnel.ok) {
        if (tunnel.code === 'refused' && 'statusCode' in tunnel) {
          const answer = `${tunnel.statusCode} ${tunnel.statusText}`.trim()
          return fail('CONNECT', `proxy ${proxy.label} refused CONNECT ${target.label}: HTTP ${answer}`, tunnel.statusCode === 407
            ? `Ask IT to let this server through proxy ${proxy.label} to ${target.label} (TCP) without proxy authentication (the proxy answers HTTP ${answer})`
            : `Ask IT to open: ${target.label} (TCP) from this server${through} (the proxy answers HTTP ${answer})`)
        }
        return fail('CONNECT', `no answer from proxy ${proxy.label} to CONNECT ${target.label} (${tunnel.code})`,
          `Ask IT to open: ${target.label} (TCP) from this server${through} (the proxy gives no answer: ${tunnel.code})`)
      }
      sockets.push(tunnel.socket)
      channel = tunnel.socket
      add('CONNECT', 'OK', `tunnel to ${target.label} through ${proxy.label} (HTTP ${tunnel.statusCode}) in ${Math.round(tunnel.elapsedMs)} ms`)
    }

    if (target.isTls) {
      const tls = await handshakeTls(channel, target.host, options.ca, options.stepTimeoutMs)
      if (!tls.ok) {
        if (notTlsCodes.has(tls.code)) {
          return fail('TLS', `${target.label} does not speak TLS: the answer is plain text (an HTTP server, or a proxy's block page?) (${tls.code})`,
            `Ask IT why ${target.label} answers in plain text instead of TLS from this server${through}: a transparent proxy or block page in between?`)
        }
        return fail('TLS', `TLS handshake with ${target.label} failed (${tls.code}): something cuts TLS off?`,
          `Ask IT why TLS to ${target.label} is cut off from this server${through} (${tls.code}): a firewall or proxy breaking TLS?`)
      }
      sockets.push(tls.socket)
      channel = tls.socket
      const verdict = judgeTls(tls.facts, target, options)
      if (verdict.status === 'FAIL') return fail('TLS', verdict.detail, verdict.ask)
      add('TLS', verdict.status, verdict.detail)
    } else {
      add('TLS', 'SKIP', 'plain http:// (allowed for loopback only)')
    }

    const hostHeader = target.port === (target.isTls ? 443 : 80) ? target.label.replace(/:\d+$/, '') : target.label
    const answer = await sendGet(channel, {
      hostHeader,
      path: target.httpPath,
      timeoutMs: options.httpTimeoutMs,
      maxBodyBytes: target.isIssuer ? maxDiscoveryBytes : 0,
      nowMs: options.nowMs
    })
    if (!answer.ok) {
      return fail('HTTP', `GET ${target.httpPath}: no HTTP answer (${answer.code === 'timeout' ? `nothing within ${secondsOf(options.httpTimeoutMs)}` : answer.code})`)
    }
    const status = `HTTP ${answer.status}${answer.statusText === '' ? '' : ` ${answer.statusText}`}`
    if (!target.isIssuer) {
      add('HTTP', 'OK', `GET ${target.httpPath}: ${status} in ${Math.round(answer.elapsedMs)} ms (any status shows the host answers)`)
      return { rows, askIt, answer }
    }
    if (answer.status !== 200) {
      add('HTTP', 'FAIL', `GET ${target.httpPath}: ${status}; HelseID's discovery document should answer 200`)
      return { rows, askIt, answer }
    }
    try {
      const metadata = parseMetadata(answer.body, options.issuer)
      add('HTTP', 'OK', `GET ${target.httpPath}: ${status} in ${Math.round(answer.elapsedMs)} ms; issuer matches, token endpoint ${metadata.tokenEndpoint}`)
    } catch (error) {
      add('HTTP', 'FAIL', `GET ${target.httpPath}: ${status}, but ${error instanceof Error ? error.message : 'unusable'}`)
    }
    return { rows, askIt, answer }
  } finally {
    // Outermost first: destroying a TCP socket under a live TLS socket crashes Node 20 (SIGSEGV).
    for (const socket of sockets.reverse()) socket.destroy()
  }
}

function describeTcpFailure (code: string, timeout: string): string {
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED: nothing listens there, or a firewall rejects)'
  if (code === 'timeout' || code === 'ETIMEDOUT') return `no answer within ${timeout} (a firewall dropping the traffic?)`
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to the host (${code})`
  if (code === 'ECONNRESET') return 'connection reset (ECONNRESET: a firewall rejecting?)'
  return code
}

interface TlsVerdict {
  readonly status: StepStatus
  readonly detail: string
  readonly ask?: string
}

function judgeTls (facts: TlsFacts, target: DoctorTarget, options: HostCheckOptions): TlsVerdict {
  const certificate = facts.certificate
  const summary = certificate === undefined ? 'no certificate' : describeCertificate(certificate, options.nowMs())
  const issuer = certificate === undefined ? 'unknown' : `"${distinguishedName(certificate.issuer)}"`
  const fix = options.hasCaFile ? 'add the inspection CA\'s certificate (PEM) to the egress.caFile bundle' : 'put the inspection CA\'s certificate (PEM) in a file and set egress.caFile to it'
  if (facts.chainError !== undefined) {
    if (untrustedCodes.has(facts.chainError)) {
      return {
        status: 'FAIL',
        detail: `certificate not trusted (TLS inspection?): ${facts.chainError}; ${summary}`,
        ask: `Ask IT to exempt ${target.label} from TLS inspection (its certificate here is issued by ${issuer}), or ${fix}`
      }
    }
    if (facts.chainError === 'CERT_HAS_EXPIRED' || facts.chainError === 'CERT_NOT_YET_VALID') {
      return {
        status: 'FAIL',
        detail: `certificate ${facts.chainError === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'} (${facts.chainError}): is this server's clock right? ${summary}`,
        ask: `Ask IT to check this server's clock, and whether something in between presents ${target.label}'s certificate (issued by ${issuer})`
      }
    }
    return {
      status: 'FAIL',
      detail: `certificate rejected (${facts.chainError}); ${summary}`,
      ask: `Ask IT to exempt ${target.label} from TLS inspection (certificate issued by ${issuer}: ${facts.chainError})`
    }
  }
  if (facts.nameError !== undefined) {
    return {
      status: 'FAIL',
      detail: `certificate does not name ${target.host} (TLS inspection or a wrong route?): ${facts.nameError}; ${summary}`,
      ask: `Ask IT to exempt ${target.label} from TLS inspection: the certificate presented here is not ${target.host}'s (issued by ${issuer})`
    }
  }
  const daysLeft = certificate === undefined ? Infinity : daysUntil(certificate.valid_to, options.nowMs())
  const status: StepStatus = daysLeft < expiryWarningDays ? 'WARN' : 'OK'
  return { status, detail: `${facts.protocol}; ${summary}; trusted, name verified${status === 'WARN' ? '; expires soon' : ''}` }
}

function describeCertificate (certificate: PeerCertificate, nowMs: number): string {
  const validTo = new Date(certificate.valid_to)
  const days = Math.floor(daysUntil(certificate.valid_to, nowMs))
  const until = Number.isNaN(validTo.getTime()) ? certificate.valid_to : validTo.toISOString().slice(0, 10)
  return `${distinguishedName(certificate.subject)} issued by ${distinguishedName(certificate.issuer)}, valid until ${until} (${days} days)`
}

function daysUntil (validTo: string, nowMs: number): number {
  const ms = new Date(validTo).getTime()
  return Number.isNaN(ms) ? Infinity : (ms - nowMs) / 86_400_000
}

// CN and O are what a sysadmin recognises ("Fortinet", "Zscaler"); the rest of the name is noise here.
function distinguishedName (name: PeerCertificate['subject'] | undefined): string {
  if (name === undefined || name === null) return '(none)'
  const parts = (['CN', 'O'] as const).flatMap(key => {
    const value = name[key]
    const text = Array.isArray(value) ? value.join('+') : value
    return typeof text === 'string' && text !== '' ? [`${key}=${text}`] : []
  })
  return parts.length === 0 ? '(unnamed)' : parts.join(', ')
}

function formatAddress (address: string): string {
  return address.includes(':') ? `[${address}]` : address
}
