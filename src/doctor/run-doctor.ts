// doctor: every configured host step by step (in parallel), the clock against HelseID, then one real token per tenant and API.

import { rootCertificates } from 'node:tls'
import type { Clock } from '../clock.ts'
import type { BrokerConfig } from '../config/config.ts'
import { resolveEgressRoute, type ProxyEnvironment } from '../http/egress.ts'
import { checkHost } from './check-host.ts'
import { judgeClockSkew } from './clock-skew.ts'
import type { DoctorReport, DoctorRow } from './doctor-report.ts'
import { proxyEndpoint, routeFor } from './doctor-route.ts'
import { doctorTargets } from './doctor-targets.ts'
import type { LookupAll } from './network-probes.ts'

/** The result of one token request, as doctor reports it. */
export type TokenCheck =
  | { readonly ok: true, readonly detail: string }
  | { readonly ok: false, readonly code: string, readonly oauthError?: string, readonly message: string }

export interface DoctorOptions {
  readonly config: BrokerConfig
  /** Proxy variables (HTTPS_PROXY, NO_PROXY…), as the broker would read them. */
  readonly env: ProxyEnvironment
  /** Certificates from egress.caFile (PEM), trusted besides Node's bundled roots. */
  readonly extraCa: readonly string[]
  readonly clock: Clock
  /** Per DNS, TCP, CONNECT and TLS step; default 5000. */
  readonly stepTimeoutMs?: number
  /** For the HTTP step; default helseid.timeoutMs. */
  readonly httpTimeoutMs?: number
  /** Name resolution; default the system resolver (tests resolve made-up names without asking DNS). */
  readonly lookup?: LookupAll
  /** Fetches one real token; without it, no TOKEN rows. */
  readonly checkToken?: (tenant: string, api: string) => Promise<TokenCheck>
}

const oauthHints: Readonly<Record<string, string>> = {
  invalid_client: 'does Selvbetjening have this key for this client id, and is the clock right?',
  invalid_scope: 'has the client been granted this API\'s scope in Selvbetjening?',
  unauthorized_client: 'may this client use client_credentials?'
}

/** Runs every check; never throws for network trouble or a refused token (those are rows). */
export async function runDoctor (options: DoctorOptions): Promise<DoctorReport> {
  const { config } = options
  const egress = resolveEgressRoute(config.egress.proxy, options.env)
  const targets = doctorTargets(config)
  const ca = options.extraCa.length === 0 ? undefined : [...rootCertificates, ...options.extraCa]
  const stepTimeoutMs = options.stepTimeoutMs ?? 5_000

  const checks = await Promise.all(targets.map(async target => await checkHost({
    target,
    route: routeFor(target, egress),
    ca,
    hasCaFile: options.extraCa.length > 0,
    issuer: config.helseid.issuer,
    stepTimeoutMs,
    httpTimeoutMs: options.httpTimeoutMs ?? config.helseid.timeoutMs,
    nowMs: options.clock.nowMs,
    ...(options.lookup === undefined ? {} : { lookup: options.lookup })
  })))

  const rows: DoctorRow[] = []
  const askIt: string[] = []
  let isIssuerReachable = false
  targets.forEach((target, index) => {
    const check = checks[index]
    if (check === undefined) return
    rows.push(...check.rows)
    askIt.push(...check.askIt)
    if (!target.isIssuer) return
    isIssuerReachable = check.rows.every(row => row.status !== 'FAIL')
    if (check.answer === undefined) {
      rows.push({ subject: target.label, step: 'CLOCK', status: 'SKIP', detail: 'not tried: no answer from HelseID' })
      return
    }
    const skew = judgeClockSkew(check.answer.date, check.answer.sentAtMs, check.answer.answeredAtMs)
    rows.push({ subject: target.label, step: 'CLOCK', status: skew.status, detail: skew.detail })
    if (skew.ask !== undefined) askIt.push(skew.ask)
  })

  if (options.checkToken !== undefined) {
    for (const tenant of Object.values(config.tenants)) {
      for (const api of tenant.apis) {
        const subject = `tenant ${tenant.name}`
        if (!isIssuerReachable) {
          rows.push({ subject, step: 'TOKEN', status: 'SKIP', detail: `${api}: not tried: HelseID (${config.helseid.issuer}) failed above` })
          continue
        }
        const result = await options.checkToken(tenant.name, api)
        if (result.ok) {
          rows.push({ subject, step: 'TOKEN', status: 'OK', detail: `${api}: ${result.detail}` })
          continue
        }
        const hint = result.oauthError === undefined ? undefined : oauthHints[result.oauthError]
        rows.push({ subject, step: 'TOKEN', status: 'FAIL', detail: `${api}: ${result.code}${result.oauthError === undefined ? '' : ` (${result.oauthError})`}: ${result.message}${hint === undefined ? '' : `; ${hint}`}` })
      }
    }
  }

  return { preamble: describeSetup(options, targets, egress), rows, askIt: [...new Set(askIt)] }
}

function describeSetup (options: DoctorOptions, targets: ReturnType<typeof doctorTargets>, egress: ReturnType<typeof resolveEgressRoute>): string[] {
  const { config } = options
  const proxy = egress === undefined ? undefined : proxyEndpoint(egress)
  const route = proxy === undefined || egress === undefined
    ? 'direct (no egress.proxy, no HTTPS_PROXY/HTTP_PROXY, or NO_PROXY=*)'
    : `through proxy ${proxy.label} (${proxy.source})${egress.noProxy === '' ? '' : `, except NO_PROXY ${egress.noProxy}`}`
  return [
    `helseid-broker doctor: ${config.source}`,
    `egress: ${route}`,
    `trusted CAs: Node's bundled roots${config.egress.caFile === undefined ? '' : ` + ${options.extraCa.length} from ${config.egress.caFile}`}`,
    'hosts:',
    ...targets.map(target => `  ${target.label}  ${target.roles.join(', ')}`)
  ]
}
