// The distinct hosts doctor checks: HelseID's issuer, the Selvbetjening API and every configured API, with their roles.

import type { BrokerConfig } from '../config/config.ts'

/** One host:port the broker calls, and why. */
export interface DoctorTarget {
  /** Host name or IP address, IPv6 without brackets. */
  readonly host: string
  readonly port: number
  readonly isTls: boolean
  /** `host:port` as written to IT (`[::1]:443` for IPv6). */
  readonly label: string
  readonly roles: readonly string[]
  /** What the HTTP step GETs: the discovery document at the issuer, else `/`. */
  readonly httpPath: string
  readonly isIssuer: boolean
}

/** Every distinct scheme://host:port in the config, issuer first; roles of shared hosts are merged. */
export function doctorTargets (config: BrokerConfig): DoctorTarget[] {
  const byOrigin = new Map<string, { url: URL, roles: string[], httpPath: string, isIssuer: boolean }>()
  const add = (text: string, role: string, httpPath?: string): void => {
    const url = new URL(text)
    const existing = byOrigin.get(url.origin)
    if (existing !== undefined) {
      existing.roles.push(role)
      return
    }
    byOrigin.set(url.origin, { url, roles: [role], httpPath: httpPath ?? '/', isIssuer: httpPath !== undefined })
  }
  add(config.helseid.issuer, 'HelseID (issuer)', `${new URL(config.helseid.issuer).pathname.replace(/\/$/, '')}/.well-known/openid-configuration`)
  add(config.helseid.selvbetjeningUrl, 'Selvbetjening API')
  for (const api of Object.values(config.apis)) add(api.url, `API ${api.name}`)
  return [...byOrigin.values()].map(({ url, roles, httpPath, isIssuer }) => {
    const isTls = url.protocol === 'https:'
    const port = url.port === '' ? (isTls ? 443 : 80) : Number(url.port)
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port,
      isTls,
      label: `${url.hostname}:${port}`,
      roles,
      httpPath,
      isIssuer
    }
  })
}
