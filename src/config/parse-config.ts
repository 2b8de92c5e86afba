// Turns the config file's parsed contents (unknown) into a readonly BrokerConfig, or one ConfigError listing every issue.

import { isIPv4, isIPv6 } from 'node:net'
import { dirname, resolve } from 'node:path'
import { ConfigError } from '../errors.ts'
import { isLoopbackHost } from '../http/urls.ts'
import type { BrokerConfig, HelseIdEnvironment } from './config.ts'
import { parseApis } from './parse-apis.ts'
import { parseCallers } from './parse-callers.ts'
import {
  asChoice, asListenAddress, asNonEmptyString, asOptionalObject, asPositiveMs, asUrl, checkKeys, deepFreeze, describe,
  expected, formatListenAddress, isRecord, joinPath, type Issues, type RawObject
} from './parse-helpers.ts'
import { parseKeys } from './parse-keys.ts'
import { parseLimits } from './parse-limits.ts'
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
  checkKeys(raw, ['helseid', 'listen', 'callers', 'limits', 'browser', 'audit', 'egress', 'apis', 'tenants', 'keys', 'logging'], '', issues)

  const helseid = parseHelseId(raw.helseid, issues)
  const listen = parseListen(raw.listen, issues)
  if (listen !== undefined && raw.callers === undefined && !isLoopbackHost(listen.proxy.host)) {
    issues.push(`listen.proxy: ${formatListenAddress(listen.proxy)} is not a loopback address; configure callers: (caller authentication) before serving other machines`)
  }
  const egress = asOptionalObject(raw.egress, 'egress', issues) ?? {}
  checkKeys(egress, ['proxy', 'caFile'], 'egress', issues)
  const egressProxy = egress.proxy === undefined ? undefined : asUrl(egress.proxy, { isHttpAllowed: true, isPathAllowed: false }, 'egress.proxy', issues)
  const caFile = egress.caFile === undefined ? undefined : asNonEmptyString(egress.caFile, 'egress.caFile', issues)
  const apis = parseApis(raw.apis, issues)
  const apiNames = new Set(isRecord(raw.apis) ? Object.keys(raw.apis) : [])
  const tenants = parseTenants(raw.tenants, apiNames, source, issues)
  const tenantNames = new Set(isRecord(raw.tenants) ? Object.keys(raw.tenants) : [])
  const callers = parseCallers(raw.callers, { tenantNames, tenants, apiNames, baseDir: dirname(source) }, issues)
  const limits = parseLimits(raw.limits, issues)
  const browser = parseBrowser(raw.browser, issues)
  const audit = parseAudit(raw.audit, source, issues)
  const keys = parseKeys(raw.keys, issues)
  const logging = asOptionalObject(raw.logging, 'logging', issues) ?? {}
  checkKeys(logging, ['level'], 'logging', issues)
  const level = asChoice(logging.level, logLevels, 'info', 'logging.level', issues)

  if (issues.length > 0 || helseid === undefined || listen === undefined) throw new ConfigError(issues)
  return deepFreeze({
    source,
    helseid,
    listen,
    ...(callers === undefined ? {} : { callers }),
    limits,
    browser,
    audit,
    egress: {
      ...(egressProxy === undefined ? {} : { proxy: egressProxy }),
      ...(caFile === undefined ? {} : { caFile: resolve(dirname(source), caFile) })
    },
    apis,
    tenants,
    keys,
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
  checkKeys(raw, ['proxy', 'admin', 'hostnames'], 'listen', issues)
  const proxy = asListenAddress(raw.proxy, defaultListen.proxy, 'listen.proxy', issues)
  const admin = asListenAddress(raw.admin, defaultListen.admin, 'listen.admin', issues)
  const hostnames = parseHostnames(raw.hostnames, 'listen.hostnames', issues)
  if (proxy === undefined || admin === undefined || hostnames === undefined) return undefined
  if (proxy.port !== 0 && proxy.port === admin.port && (proxy.host === admin.host || isWildcard(proxy.host) || isWildcard(admin.host))) {
    issues.push(`listen.admin: ${formatListenAddress(admin)} clashes with listen.proxy ${formatListenAddress(proxy)}; the admin listener needs its own port`)
    return undefined
  }
  return { proxy, admin, hostnames }
}

const dnsNamePattern = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

// Extra names callers may put in the Host header (besides loopback names and the listen hosts); stored in lower case.
function parseHostnames (value: unknown, path: string, issues: Issues): string[] | undefined {
  if (value === undefined) return []
  if (!Array.isArray(value)) { expected('a list of host names', value, path, issues); return undefined }
  const before = issues.length
  const hostnames: string[] = []
  value.forEach((item: unknown, index) => {
    const itemPath = joinPath(path, index)
    if (typeof item !== 'string' || item === '') { expected('a host name or IP address', item, itemPath, issues); return }
    const hostname = item.toLowerCase()
    if (item.startsWith('[')) issues.push(`${itemPath}: write an IPv6 address without brackets, got ${describe(item)}`)
    else if (!isIPv6(item) && item.includes(':')) issues.push(`${itemPath}: a host name without a port, got ${describe(item)}`)
    else if (!isIPv4(item) && !isIPv6(item) && (item.length > 253 || !dnsNamePattern.test(item))) issues.push(`${itemPath}: ${describe(item)} is not a DNS name or IP address`)
    else if (hostnames.includes(hostname)) issues.push(`${itemPath}: ${describe(item)} is listed twice`)
    else hostnames.push(hostname)
  })
  return issues.length === before ? hostnames : undefined
}

function parseBrowser (value: unknown, issues: Issues): BrokerConfig['browser'] {
  const raw = asOptionalObject(value, 'browser', issues) ?? {}
  checkKeys(raw, ['allowedOrigins'], 'browser', issues)
  const path = 'browser.allowedOrigins'
  if (raw.allowedOrigins === undefined) return { allowedOrigins: [] }
  if (!Array.isArray(raw.allowedOrigins)) { expected('a list of origins such as ["https://epj.kommune.no"]', raw.allowedOrigins, path, issues); return { allowedOrigins: [] } }
  const origins: string[] = []
  raw.allowedOrigins.forEach((item: unknown, index) => {
    const itemPath = joinPath(path, index)
    const origin = typeof item === 'string' ? checkOrigin(item) : undefined
    if (typeof item !== 'string' || item === '') expected('an origin such as "https://epj.kommune.no"', item, itemPath, issues)
    else if (typeof origin === 'object') issues.push(`${itemPath}: ${origin.problem}`)
    else if (origins.includes(item)) issues.push(`${itemPath}: ${describe(item)} is listed twice`)
    else origins.push(item)
  })
  return { allowedOrigins: origins }
}

// An origin exactly as browsers send it in the Origin header: scheme://host[:port], lower case, no default port.
function checkOrigin (text: string): { readonly problem: string } | undefined {
  if (text === '*' || text === 'null') return { problem: `${describe(text)} is not allowed; list each origin (scheme://host[:port])` }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { problem: `expected an origin such as "https://epj.kommune.no" (scheme://host[:port]), got ${describe(text)}` }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: `expected an http:// or https:// origin, got ${describe(text)}` }
  if (url.username !== '' || url.password !== '') return { problem: 'an origin has no user name or password' }
  if (text === url.origin) return undefined
  if (text === `${url.origin}/` || url.pathname !== '/' || url.search !== '' || url.hash !== '') return { problem: `an origin is scheme://host[:port] without a path, query or trailing "/"; write ${url.origin}` }
  return { problem: `write it as browsers send it: ${url.origin}` }
}

function parseAudit (value: unknown, source: string, issues: Issues): BrokerConfig['audit'] {
  const raw = asOptionalObject(value, 'audit', issues) ?? {}
  checkKeys(raw, ['file'], 'audit', issues)
  if (raw.file === undefined) return {}
  const file = asNonEmptyString(raw.file, 'audit.file', issues)
  if (file === undefined) return {}
  return { file: file === '-' ? '-' : resolve(dirname(source), file) }
}

function isWildcard (host: string): boolean {
  return host === '0.0.0.0' || host === '::'
}
