// Turns the config file's parsed contents (unknown) into a readonly BrokerConfig, or one ConfigError listing every issue.

import { ConfigError } from '../errors.ts'
import type { BrokerConfig, HelseIdEnvironment } from './config.ts'
import { parseApis } from './parse-apis.ts'
import {
  asChoice, asListenAddress, asOptionalObject, asPositiveMs, asUrl, checkKeys, deepFreeze, describe,
  formatListenAddress, isRecord, type Issues, type RawObject
} from './parse-helpers.ts'
import { parseTenants } from './parse-tenants.ts'

/** The HelseID hosts behind `helseid.environment`. */
export const helseIdEnvironments = {
  prod: { issuer: 'https://helseid-sts.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.nhn.no' },
  test: { issuer: 'https://helseid-sts.test.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.test.nhn.no' }
} as const

/** Default time allowed for one HelseID request (discovery, token, Selvbetjening). */
export const defaultHelseIdTimeoutMs = 10_000
/** Default listen addresses: loopback only. */
export const defaultListen = { proxy: '127.0.0.1:8480', admin: '127.0.0.1:8481' } as const
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * Validates a parsed config file; `source` is its absolute path, against whose directory relative paths resolve.
 * @throws ConfigError listing every problem as `path: message`
 */
export function parseConfig (raw: unknown, source: string): BrokerConfig {
  const issues: Issues = []
  if (raw === undefined || raw === null) throw new ConfigError(['(root): the config is empty; expected a mapping with helseid, apis and tenants'])
  if (!isRecord(raw)) throw new ConfigError([`(root): expected a mapping with helseid, apis and tenants, got ${describe(raw)}`])
  checkKeys(raw, ['helseid', 'listen', 'egress', 'apis', 'tenants', 'logging'], '', issues)

  const helseid = parseHelseId(raw.helseid, issues)
  const listen = parseListen(raw.listen, issues)
  const egress = asOptionalObject(raw.egress, 'egress', issues) ?? {}
  checkKeys(egress, ['proxy'], 'egress', issues)
  const egressProxy = egress.proxy === undefined ? undefined : asUrl(egress.proxy, { isHttpAllowed: true, isPathAllowed: false }, 'egress.proxy', issues)
  const apis = parseApis(raw.apis, issues)
  const apiNames = new Set(isRecord(raw.apis) ? Object.keys(raw.apis) : [])
  const tenants = parseTenants(raw.tenants, apiNames, source, issues)
  const logging = asOptionalObject(raw.logging, 'logging', issues) ?? {}
  checkKeys(logging, ['level'], 'logging', issues)
  const level = asChoice(logging.level, logLevels, 'info', 'logging.level', issues)

  if (issues.length > 0 || helseid === undefined || listen === undefined) throw new ConfigError(issues)
  return deepFreeze({
    source,
    helseid,
    listen,
    egress: egressProxy === undefined ? {} : { proxy: egressProxy },
    apis,
    tenants,
    logging: { level }
  })
}

function parseHelseId (value: unknown, issues: Issues): BrokerConfig['helseid'] | undefined {
  if (value === undefined || value === null) { issues.push('helseid: required (e.g. environment: prod)'); return undefined }
  const raw = asOptionalObject(value, 'helseid', issues)
  if (raw === undefined) return undefined
  checkKeys(raw, ['environment', 'issuer', 'selvbetjeningUrl', 'timeoutMs'], 'helseid', issues)
  const timeoutMs = asPositiveMs(raw.timeoutMs, defaultHelseIdTimeoutMs, 'helseid.timeoutMs', issues)
  const resolved = resolveEnvironment(raw, issues)
  const selvbetjeningUrl = raw.selvbetjeningUrl === undefined
    ? resolved?.selvbetjeningUrl
    : asUrl(raw.selvbetjeningUrl, {}, 'helseid.selvbetjeningUrl', issues)
  if (resolved === undefined || selvbetjeningUrl === undefined) return undefined
  return { environment: resolved.environment, issuer: resolved.issuer, selvbetjeningUrl, timeoutMs }
}

// environment picks both hosts; a bare issuer is 'custom' unless it is one of NHN's, and then
// Selvbetjening defaults to the matching host, or to the issuer's origin for other authorities.
function resolveEnvironment (raw: RawObject, issues: Issues): { environment: HelseIdEnvironment, issuer: string, selvbetjeningUrl: string } | undefined {
  const environment = raw.environment === undefined ? undefined : asChoice(raw.environment, ['prod', 'test'] as const, 'prod', 'helseid.environment', issues)
  const issuer = raw.issuer === undefined ? undefined : asUrl(raw.issuer, {}, 'helseid.issuer', issues)
  if (environment !== raw.environment || (issuer === undefined && raw.issuer !== undefined)) return undefined
  if (environment === undefined && issuer === undefined) {
    issues.push('helseid: give environment (prod | test) or issuer (the HelseID authority URL)')
    return undefined
  }
  if (environment !== undefined) {
    const known = helseIdEnvironments[environment]
    if (issuer !== undefined && issuer !== known.issuer) {
      issues.push(`helseid.issuer: ${issuer} disagrees with environment ${environment} (whose issuer is ${known.issuer}); give only one of them`)
      return undefined
    }
    return { environment, ...known }
  }
  const knownName = (['prod', 'test'] as const).find(name => helseIdEnvironments[name].issuer === issuer)
  if (knownName !== undefined) return { environment: knownName, ...helseIdEnvironments[knownName] }
  const customIssuer = issuer ?? ''
  return { environment: 'custom', issuer: customIssuer, selvbetjeningUrl: new URL(customIssuer).origin }
}

function parseListen (value: unknown, issues: Issues): BrokerConfig['listen'] | undefined {
  const raw = asOptionalObject(value, 'listen', issues)
  if (raw === undefined) return undefined
  checkKeys(raw, ['proxy', 'admin'], 'listen', issues)
  const proxy = asListenAddress(raw.proxy, defaultListen.proxy, 'listen.proxy', issues)
  const admin = asListenAddress(raw.admin, defaultListen.admin, 'listen.admin', issues)
  if (proxy === undefined || admin === undefined) return undefined
  if (proxy.port !== 0 && proxy.port === admin.port && (proxy.host === admin.host || isWildcard(proxy.host) || isWildcard(admin.host))) {
    issues.push(`listen.admin: ${formatListenAddress(admin)} clashes with listen.proxy ${formatListenAddress(proxy)}; the admin listener needs its own port`)
    return undefined
  }
  return { proxy, admin }
}

function isWildcard (host: string): boolean {
  return host === '0.0.0.0' || host === '::'
}
