// Parses the config's `tenants` section: client file, client id, organisation numbers and allowed APIs.

import { dirname, resolve } from 'node:path'
import type { OrganizationConfig, TenantConfig } from './config.ts'
import { checkName } from './parse-apis.ts'
import { asNonEmptyString, asObject, checkKeys, expected, isRecord, joinPath, type Issues } from './parse-helpers.ts'

/** Parses the `tenants` mapping; relative client paths resolve against the directory of `source`. */
export function parseTenants (value: unknown, apiNames: ReadonlySet<string>, source: string, issues: Issues): Record<string, TenantConfig> {
  const tenants = asObject(value, 'tenants', issues)
  if (tenants === undefined) return {}
  if (Object.keys(tenants).length === 0) issues.push('tenants: at least one tenant is required')
  const entries: Array<[string, TenantConfig]> = []
  for (const [name, raw] of Object.entries(tenants)) {
    const path = joinPath('tenants', name)
    const isNameOk = checkName(name, 'tenant', path, issues)
    const tenant = parseTenant(name, raw, path, apiNames, dirname(source), issues)
    if (isNameOk && tenant !== undefined) entries.push([name, tenant])
  }
  return Object.fromEntries(entries)
}

function parseTenant (name: string, value: unknown, path: string, apiNames: ReadonlySet<string>, baseDir: string, issues: Issues): TenantConfig | undefined {
  const raw = asObject(value, path, issues)
  if (raw === undefined) return undefined
  const before = issues.length
  checkKeys(raw, ['client', 'clientId', 'organization', 'apis'], path, issues)
  const client = asNonEmptyString(raw.client, joinPath(path, 'client'), issues)
  const clientId = raw.clientId === undefined ? undefined : asNonEmptyString(raw.clientId, joinPath(path, 'clientId'), issues)
  const organization = parseOrganization(raw.organization, joinPath(path, 'organization'), issues)
  const apis = parseTenantApis(raw.apis, joinPath(path, 'apis'), apiNames, issues)
  if (issues.length !== before || client === undefined) return undefined
  return {
    name,
    clientFile: resolve(baseDir, client),
    ...(clientId === undefined ? {} : { clientId: clientId.trim() }),
    organization,
    apis
  }
}

function parseOrganization (value: unknown, path: string, issues: Issues): OrganizationConfig {
  if (value === undefined || value === null) return {}
  if (!isRecord(value)) { expected('a mapping with parent and/or child', value, path, issues); return {} }
  checkKeys(value, ['parent', 'child'], path, issues)
  const parent = asOrganizationNumber(value.parent, joinPath(path, 'parent'), issues)
  const child = asOrganizationNumber(value.child, joinPath(path, 'child'), issues)
  return { ...(parent === undefined ? {} : { parent }), ...(child === undefined ? {} : { child }) }
}

function asOrganizationNumber (value: unknown, path: string, issues: Issues): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && /^\d{9}$/.test(value)) return value
  expected(typeof value === 'string' ? '9 digits' : 'a string of 9 digits', value, path, issues)
  return undefined
}

function parseTenantApis (value: unknown, path: string, apiNames: ReadonlySet<string>, issues: Issues): string[] {
  if (value === undefined) { issues.push(`${path}: required (a list of API names from apis)`); return [] }
  if (!Array.isArray(value)) { expected('a list of API names', value, path, issues); return [] }
  if (value.length === 0) issues.push(`${path}: at least one API is required`)
  const apis: string[] = []
  value.forEach((api: unknown, index) => {
    const apiPath = joinPath(path, index)
    if (typeof api !== 'string' || api === '') expected('an API name', api, apiPath, issues)
    else if (!apiNames.has(api)) issues.push(`${apiPath}: no API named ${JSON.stringify(api)} in apis${apiNames.size === 0 ? '' : ` (known: ${[...apiNames].join(', ')})`}`)
    else if (apis.includes(api)) issues.push(`${apiPath}: ${JSON.stringify(api)} is listed twice`)
    else apis.push(api)
  })
  return apis
}
