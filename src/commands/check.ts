// The `check` command: validates the config file and every key file, and prints each problem with its path.

import { resolve } from 'node:path'
import type { BrokerConfig } from '../config/config.ts'
import { loadConfig } from '../config/load-config.ts'
import { formatListenAddress } from '../config/parse-helpers.ts'
import { ConfigError, exitCodes } from '../errors.ts'
import type { ClientKey } from '../keys/client-key.ts'
import { loadTenantCredentials, type TenantCredentials } from '../keys/tenant-keys.ts'

/**
 * Loads the config and all key files, printing a summary to `out` (exit 0) or every problem with its path to `err` (exit 78).
 * @throws only for unexpected failures; configuration and key file problems become output and exit code 78
 */
export async function runCheck (configPath: string, out: (line: string) => void, err: (line: string) => void = out): Promise<number> {
  let config: BrokerConfig
  let credentials: ReadonlyMap<string, TenantCredentials>
  try {
    config = await loadConfig(configPath)
    credentials = await loadTenantCredentials(config)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    err(`${resolve(configPath)}: ${error.issues.length} ${error.issues.length === 1 ? 'problem' : 'problems'}`)
    for (const issue of error.issues) err(`  ${issue}`)
    return exitCodes.config
  }
  for (const line of summarise(config, credentials)) out(line)
  return exitCodes.ok
}

function summarise (config: BrokerConfig, credentials: ReadonlyMap<string, TenantCredentials>): string[] {
  const { helseid, listen, egress } = config
  const lines = [
    `${config.source}: ok`,
    `helseid: ${helseid.issuer} (${helseid.environment}), selvbetjening ${helseid.selvbetjeningUrl}, timeout ${helseid.timeoutMs} ms`,
    `listen: proxy ${formatListenAddress(listen.proxy)}, admin ${formatListenAddress(listen.admin)}`,
    `egress: ${egress.proxy === undefined ? 'direct (HTTPS_PROXY / NO_PROXY from the environment are honoured)' : `via ${egress.proxy}`}`,
    `logging: ${config.logging.level}`,
    'apis:'
  ]
  for (const api of Object.values(config.apis)) {
    const headers = Object.keys(api.headers)
    lines.push(`  ${api.name}: ${api.url} scopes ${api.scopes.join(' ')}${headers.length === 0 ? '' : `; headers ${headers.join(', ')}`}`)
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

function describeKey (key: ClientKey): string {
  const size = key.kty === 'RSA' ? `RSA ${key.sizeBits} bits` : `EC ${key.crv ?? ''}`
  return `kid ${key.kid}, ${key.alg}, ${size}`
}
