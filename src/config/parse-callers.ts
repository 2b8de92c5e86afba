// Parses the config's `callers` section: who may use the proxy listener, with which secret, for which tenants and APIs.

import { resolve } from 'node:path'
import { parseSecretHash } from '../security/secret-hash.ts'
import type { CallerConfig, CallerSecretConfig, TenantConfig } from './config.ts'
import { checkName } from './parse-apis.ts'
import { asNonEmptyString, asObject, checkKeys, expected, isRecord, joinPath, type Issues, type RawObject } from './parse-helpers.ts'
import { parseRateLimit } from './parse-limits.ts'
import { parseRouteRules } from './parse-route-rules.ts'

/** What a caller's tenants and APIs are checked against. */
export interface CallerContext {
  /** Every tenant name in the file, also those with other issues. */
  readonly tenantNames: ReadonlySet<string>
  /** The tenants that parsed cleanly (their APIs are known). */
  readonly tenants: Readonly<Record<string, TenantConfig>>
  /** Every API name in the file. */
  readonly apiNames: ReadonlySet<string>
  /** Directory that relative secret files resolve against. */
  readonly baseDir: string
}

/** Parses the optional `callers` mapping; undefined when absent (no caller authentication, loopback only). */
export function parseCallers (value: unknown, context: CallerContext, issues: Issues): Record<string, CallerConfig> | undefined {
  if (value === undefined) return undefined
  if (value === null || (isRecord(value) && Object.keys(value).length === 0)) {
    issues.push('callers: at least one caller is required; remove callers: altogether to serve loopback clients without caller authentication')
    return {}
  }
  const callers = asObject(value, 'callers', issues)
  if (callers === undefined) return {}
  const entries: Array<[string, CallerConfig]> = []
  for (const [name, raw] of Object.entries(callers)) {
    const path = joinPath('callers', name)
    const isNameOk = checkName(name, 'caller', path, issues, 'it is the user name in HTTP Basic')
    const caller = parseCaller(name, raw, path, context, issues)
    if (isNameOk && caller !== undefined) entries.push([name, caller])
  }
  return Object.fromEntries(entries)
}

function parseCaller (name: string, value: unknown, path: string, context: CallerContext, issues: Issues): CallerConfig | undefined {
  const raw = asObject(value, path, issues)
  if (raw === undefined) return undefined
  const before = issues.length
  checkKeys(raw, ['secretHash', 'secretFile', 'tenants', 'apis', 'allow', 'rateLimit'], path, issues)
  const secret = parseSecret(raw, path, context.baseDir, issues)
  const tenants = parseCallerTenants(raw.tenants, joinPath(path, 'tenants'), context.tenantNames, issues)
  const apis = parseCallerApis(raw.apis, joinPath(path, 'apis'), tenants, context, issues)
  const allow = parseRouteRules(raw.allow, joinPath(path, 'allow'), issues)
  const rateLimit = parseRateLimit(raw.rateLimit, joinPath(path, 'rateLimit'), issues)
  if (issues.length !== before || secret === undefined || tenants === undefined) return undefined
  return {
    name,
    secret,
    tenants,
    ...(apis === undefined ? {} : { apis }),
    allow,
    ...(rateLimit === undefined ? {} : { rateLimit })
  }
}

// Exactly one of secretHash and secretFile. Messages never quote a value: someone may have pasted the secret itself.
function parseSecret (raw: RawObject, path: string, baseDir: string, issues: Issues): CallerSecretConfig | undefined {
  if (raw.secretHash !== undefined && raw.secretFile !== undefined) {
    issues.push(`${path}: give either secretHash or secretFile, not both`)
    return undefined
  }
  if (raw.secretHash !== undefined) {
    const hashPath = joinPath(path, 'secretHash')
    if (typeof raw.secretHash !== 'string') { issues.push(`${hashPath}: expected the text printed by "helseid-broker hash-secret" (scrypt$...)`); return undefined }
    const parsed = parseSecretHash(raw.secretHash)
    if (typeof parsed === 'string') { issues.push(`${hashPath}: ${parsed}`); return undefined }
    return { kind: 'hash', hash: raw.secretHash }
  }
  if (raw.secretFile !== undefined) {
    const file = asNonEmptyString(raw.secretFile, joinPath(path, 'secretFile'), issues)
    return file === undefined ? undefined : { kind: 'file', file: resolve(baseDir, file) }
  }
  issues.push(`${path}: give secretHash (made by "helseid-broker hash-secret") or secretFile (a file holding the secret)`)
  return undefined
}

function parseCallerTenants (value: unknown, path: string, tenantNames: ReadonlySet<string>, issues: Issues): readonly string[] | '*' | undefined {
  if (value === undefined) { issues.push(`${path}: required (a list of tenant names, or "*" for all tenants)`); return undefined }
  if (value === '*') return '*'
  if (!Array.isArray(value)) { expected('a list of tenant names, or "*" for all tenants', value, path, issues); return undefined }
  if (value.length === 0) { issues.push(`${path}: at least one tenant is required (or "*" for all tenants)`); return undefined }
  if (value.includes('*')) {
    if (value.length === 1) return '*'
    issues.push(`${path}: "*" stands for all tenants; give it alone or list names`)
    return undefined
  }
  const before = issues.length
  const tenants: string[] = []
  value.forEach((tenant: unknown, index) => {
    const tenantPath = joinPath(path, index)
    if (typeof tenant !== 'string' || tenant === '') expected('a tenant name', tenant, tenantPath, issues)
    else if (!tenantNames.has(tenant)) issues.push(`${tenantPath}: no tenant named ${JSON.stringify(tenant)} in tenants${tenantNames.size === 0 ? '' : ` (known: ${[...tenantNames].join(', ')})`}`)
    else if (tenants.includes(tenant)) issues.push(`${tenantPath}: ${JSON.stringify(tenant)} is listed twice`)
    else tenants.push(tenant)
  })
  return issues.length === before ? tenants : undefined
}

function parseCallerApis (value: unknown, path: string, tenants: readonly string[] | '*' | undefined, context: CallerContext, issues: Issues): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) { expected('a list of API names (leave apis out for all of its tenants\' APIs)', value, path, issues); return undefined }
  if (value.length === 0) { issues.push(`${path}: at least one API is required; leave apis out for all of its tenants' APIs`); return undefined }
  // Which APIs the caller's tenants use; unknown while any of those tenants has issues of its own.
  const tenantNames = tenants === '*' ? [...context.tenantNames] : tenants
  const tenantConfigs = tenantNames?.map(name => context.tenants[name])
  const usedApis = tenantConfigs?.every(tenant => tenant !== undefined) === true ? new Set(tenantConfigs.flatMap(tenant => tenant?.apis ?? [])) : undefined
  const apis: string[] = []
  value.forEach((api: unknown, index) => {
    const apiPath = joinPath(path, index)
    if (typeof api !== 'string' || api === '') expected('an API name', api, apiPath, issues)
    else if (!context.apiNames.has(api)) issues.push(`${apiPath}: no API named ${JSON.stringify(api)} in apis${context.apiNames.size === 0 ? '' : ` (known: ${[...context.apiNames].join(', ')})`}`)
    else if (apis.includes(api)) issues.push(`${apiPath}: ${JSON.stringify(api)} is listed twice`)
    else if (usedApis !== undefined && !usedApis.has(api)) issues.push(`${apiPath}: none of this caller's tenants (${tenantNames?.join(', ') ?? ''}) uses API ${JSON.stringify(api)}`)
    else apis.push(api)
  })
  return apis
}
