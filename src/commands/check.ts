// The `check` command: validates the config file, every key file and every caller secret, and prints each problem with its path.

import { resolve } from 'node:path'
import type { BrokerConfig } from '../config/config.ts'
import { loadConfig } from '../config/load-config.ts'
import { formatListenAddress } from '../config/parse-helpers.ts'
import { ConfigError, exitCodes } from '../errors.ts'
import { loadCaCertificates } from '../http/ca-file.ts'
import type { ClientKey } from '../keys/client-key.ts'
import type { ProtectedFileOptions } from '../keys/protected-file.ts'
import { loadTenantCredentials, type TenantCredentials } from '../keys/tenant-keys.ts'
import { loadCallerSecrets } from '../security/caller-secrets.ts'

/**
 * Loads the config, all key files and caller secret files, printing a summary to `out` (exit 0) or every
 * problem with its path to `err` (exit 78). `options.allowInsecurePermissions` accepts files open to group or others.
 * @throws only for unexpected failures; configuration, key and secret file problems become output and exit code 78
 */
export async function runCheck (configPath: string, out: (line: string) => void, err: (line: string) => void = out, options: ProtectedFileOptions = {}): Promise<number> {
  let config: BrokerConfig
  let credentials: ReadonlyMap<string, TenantCredentials>
  try {
    config = await loadConfig(configPath)
    const fileOptions = { allowInsecurePermissions: options.allowInsecurePermissions === true, ...(options.platform === undefined ? {} : { platform: options.platform }) }
    const caFile = config.egress.caFile
    const [keys, secrets, ca] = await Promise.allSettled([loadTenantCredentials(config, fileOptions), loadCallerSecrets(config, fileOptions), caFile === undefined ? [] : loadCaCertificates(caFile)])
    const issues = [...issuesOf(keys), ...issuesOf(secrets), ...issuesOf(ca)]
    if (issues.length > 0 || keys.status === 'rejected') throw new ConfigError(issues)
    credentials = keys.value
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    err(`${resolve(configPath)}: ${error.issues.length} ${error.issues.length === 1 ? 'problem' : 'problems'}`)
    for (const issue of error.issues) err(`  ${issue}`)
    return exitCodes.config
  }
  for (const line of summarise(config, credentials)) out(line)
  return exitCodes.ok
}

function issuesOf (result: PromiseSettledResult<unknown>): readonly string[] {
  if (result.status === 'fulfilled') return []
  if (result.reason instanceof ConfigError) return result.reason.issues
  throw result.reason
}

function summarise (config: BrokerConfig, credentials: ReadonlyMap<string, TenantCredentials>): string[] {
  const { helseid, listen, egress, limits } = config
  const lines = [
    `${config.source}: ok`,
    `helseid: ${helseid.issuer} (${helseid.environment}), selvbetjening ${helseid.selvbetjeningUrl}, timeout ${helseid.timeoutMs} ms`,
    `listen: proxy ${formatListenAddress(listen.proxy)}, admin ${formatListenAddress(listen.admin)}${listen.hostnames.length === 0 ? '' : `, host names ${listen.hostnames.join(', ')}`}`,
    `egress: ${egress.proxy === undefined ? 'direct (HTTPS_PROXY / NO_PROXY from the environment are honoured)' : `via ${egress.proxy}`}${egress.caFile === undefined ? '' : `; extra CA certificates from ${egress.caFile}`}`,
    `limits: body ${limits.maxBodyBytes} bytes, headers ${limits.maxHeaderBytes} bytes, request ${limits.requestTimeoutMs} ms, idle ${limits.idleTimeoutMs} ms, ${limits.maxConcurrentUpstream} upstream calls at once, ${describeRate(limits.rateLimit)} per caller`,
    `browser: ${config.browser.allowedOrigins.length === 0 ? 'requests from web pages are refused' : `requests from ${config.browser.allowedOrigins.join(', ')} are let through`}`,
    `audit: ${config.audit.file === undefined ? 'off' : config.audit.file === '-' ? 'stdout' : config.audit.file}`,
    `logging: ${config.logging.level}`,
    ...describeCallers(config),
    'apis:'
  ]
  for (const api of Object.values(config.apis)) {
    const headers = Object.keys(api.headers)
    lines.push(`  ${api.name}: ${api.url} scopes ${api.scopes.join(' ')}${headers.length === 0 ? '' : `; headers ${headers.join(', ')}`}${api.allow.length === 0 ? '' : `; allow ${api.allow.map(rule => rule.text).join(', ')}`}`)
  }
  lines.push('tenants:')
  for (const tenant of Object.values(config.tenants)) {
    const tenantCredentials = credentials.get(tenant.name)
    if (tenantCredentials === undefined) continue
    const { parent, child } = tenant.organization
    const organization = [parent === undefined ? '' : `parent ${parent}`, child === undefined ? '' : `child ${child}`].filter(part => part !== '').join(' ')
    lines.push(`  ${tenant.name}: client ${tenantCredentials.clientId}, apis ${tenant.apis.join(', ')}${organization === '' ? '' : `, organization ${organization}`}`)
    lines.push(`    key ${describeKey(tenantCredentials.key)} from ${tenant.clientFile}`)
  }
  return lines
}

function describeCallers (config: BrokerConfig): string[] {
  if (config.callers === undefined) return ['callers: none; only loopback clients are served, without caller authentication']
  const lines = ['callers:']
  for (const caller of Object.values(config.callers)) {
    const parts = [
      `tenants ${caller.tenants === '*' ? 'all' : caller.tenants.join(', ')}`,
      `apis ${caller.apis === undefined ? 'all of its tenants\'' : caller.apis.join(', ')}`,
      caller.secret.kind === 'hash' ? 'secret hash' : `secret file ${caller.secret.file}`,
      ...(caller.rateLimit === undefined ? [] : [describeRate(caller.rateLimit)]),
      ...(caller.allow.length === 0 ? [] : [`allow ${caller.allow.map(rule => rule.text).join(', ')}`])
    ]
    lines.push(`  ${caller.name}: ${parts.join('; ')}`)
  }
  return lines
}

function describeRate (rate: { readonly requestsPerSecond: number, readonly burst: number }): string {
  return `${rate.requestsPerSecond} requests/s (burst ${rate.burst})`
}

function describeKey (key: ClientKey): string {
  const size = key.kty === 'RSA' ? `RSA ${key.sizeBits} bits` : `EC ${key.crv ?? ''}`
  return `kid ${key.kid}, ${key.alg}, ${size}`
}
