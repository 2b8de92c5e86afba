// Adds or updates one tenant in the config file's text, keeping every other byte (comments, layout) where it can.

import { isDeepStrictEqual } from 'node:util'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify, type Document, type Node, type Pair, type YAMLMap } from 'yaml'
import { ConfigError } from '../errors.ts'

/** What `import` changes in a tenant. */
export interface TenantChange {
  readonly tenant: string
  /** The client file as written in the config, relative to it: `keys/<tenant>.json`. */
  readonly client: string
  /** The imported client id; an existing `tenants.<tenant>.clientId` that differs is set to it. */
  readonly clientId: string
  /** From --api; an existing tenant keeps its apis without them, a new one gets the config's only API. */
  readonly apis?: readonly string[]
  /** From --parent/--child; replaces an existing tenant's organization as a whole. */
  readonly organization?: { readonly parent?: string, readonly child?: string }
}

/** The config text after the change, and what changed, one line each (`tenants.x.client: a → b`). */
export interface ConfigUpdate {
  readonly text: string
  readonly isNewTenant: boolean
  readonly changes: readonly string[]
  /** How the text was produced: `edited` in place, `rewritten` by the yaml library (layout of flow collections and comment indentation may change), or as `json`. */
  readonly method: 'unchanged' | 'edited' | 'rewritten' | 'json'
}

/** A new tenant needs --api: the config has several APIs (listed in `apis`). */
export class TenantApisNeededError extends Error {
  readonly apis: readonly string[]
  constructor (tenant: string, apis: readonly string[]) {
    super(`the config has ${apis.length} APIs (${apis.join(', ')}); say which tenant ${tenant} may use with --api NAME (repeat it for several)`)
    this.name = 'TenantApisNeededError'
    this.apis = apis
  }
}

type Organization = NonNullable<TenantChange['organization']>
type Plain = Record<string, unknown>

/**
 * Applies `change` to the config `text` (YAML, or JSON, which is rewritten as JSON with its indentation).
 * YAML is edited in place: only the values that change are replaced and a new tenant is inserted after the last one,
 * so comments and layout elsewhere stay byte for byte. When the layout is too unusual for that (flow-style
 * `tenants`, an empty tenant entry), the yaml Document API writes the file instead, which keeps comments but may re-indent them.
 * @throws ConfigError when the text is not valid YAML or `tenants`/`apis` are not mappings; TenantApisNeededError (a usage error)
 */
export function updateTenantConfig (text: string, change: TenantChange): ConfigUpdate {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : ''
  const body = text.slice(bom.length)
  const json = parseJsonObject(body)
  if (json !== undefined) return updateJson(body, json, change, bom)

  const lineCounter = new LineCounter()
  const original = parseDocument(body, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const problems = [...original.errors, ...original.warnings]
  if (problems.length > 0) {
    throw new ConfigError(problems.map(problem => {
      const { line, col } = lineCounter.linePos(problem.pos[0])
      return `(yaml) line ${line}, column ${col}: ${problem.message.split('\n')[0] ?? problem.code}`
    }))
  }
  const plan = planChange(original.toJS({ maxAliasCount: 100 }) as unknown, change)
  if (plan.changes.length === 0) return { text, isNewTenant: false, changes: [], method: 'unchanged' }

  const target = parseDocument(body, { uniqueKeys: true })
  applyToDocument(target, change, plan)
  const expected: unknown = target.toJS({ maxAliasCount: 100 })
  const edited = editInPlace(body, original, change, plan)
  if (edited !== undefined && isSameConfig(edited, expected)) return { text: bom + edited, isNewTenant: plan.isNewTenant, changes: plan.changes, method: 'edited' }
  return { text: bom + String(target), isNewTenant: plan.isNewTenant, changes: plan.changes, method: 'rewritten' }
}

interface Plan {
  readonly isNewTenant: boolean
  /** The full new tenant entry (new tenants), in the order written. */
  readonly entry: { client: string, organization?: Organization, apis: readonly string[] }
  readonly setClientId: boolean
  readonly changes: string[]
}

function planChange (raw: unknown, change: TenantChange): Plan {
  if (!isPlain(raw)) throw new ConfigError([`(root): expected a mapping with helseid, apis and tenants`])
  const tenants = raw.tenants
  if (tenants !== undefined && tenants !== null && !isPlain(tenants)) throw new ConfigError(['tenants: expected a mapping of tenant names; fix it before importing'])
  const existing = isPlain(tenants) ? tenants[change.tenant] : undefined
  const path = `tenants.${change.tenant}`
  const organization = change.organization
  if (!isPlain(existing)) {
    const apis = change.apis ?? defaultApis(raw.apis, change.tenant)
    const entry = { client: change.client, ...(organization === undefined ? {} : { organization }), apis }
    return { isNewTenant: true, entry, setClientId: false, changes: [`added ${path}: ${describeEntry(entry)}`] }
  }
  const changes: string[] = []
  const note = (key: string, before: unknown, after: unknown): void => {
    if (!isDeepStrictEqual(before, after)) changes.push(`${path}.${key}: ${describeValue(before)} → ${describeValue(after)}`)
  }
  note('client', existing.client, change.client)
  const setClientId = existing.clientId !== undefined && existing.clientId !== change.clientId
  if (setClientId) note('clientId', existing.clientId, change.clientId)
  if (organization !== undefined) note('organization', existing.organization, organization)
  if (change.apis !== undefined) note('apis', existing.apis, change.apis)
  const entry = { client: change.client, ...(organization === undefined ? {} : { organization }), apis: change.apis ?? [] }
  return { isNewTenant: false, entry, setClientId, changes }
}

function defaultApis (apis: unknown, tenant: string): readonly string[] {
  if (!isPlain(apis) || Object.keys(apis).length === 0) throw new ConfigError(['apis: the config has no APIs; add the API the tenant is to use under apis: before importing'])
  const names = Object.keys(apis)
  if (names.length > 1) throw new TenantApisNeededError(tenant, names)
  return names
}

function applyToDocument (doc: Document, change: TenantChange, plan: Plan): void {
  const path = ['tenants', change.tenant]
  const flow = (value: unknown): Node => Object.assign(doc.createNode(value), { flow: true })
  if (plan.isNewTenant) {
    const entry = doc.createNode({ client: plan.entry.client }) as YAMLMap
    if (plan.entry.organization !== undefined) entry.set('organization', flow(plan.entry.organization))
    entry.set('apis', flow(plan.entry.apis))
    const tenants = doc.get('tenants', true)
    if (isMap(tenants) && tenants.items.length > 0) doc.setIn(path, entry)
    else doc.set('tenants', doc.createNode({ [change.tenant]: entry }))
    return
  }
  doc.setIn([...path, 'client'], change.client)
  if (plan.setClientId) doc.setIn([...path, 'clientId'], change.clientId)
  if (change.organization !== undefined) doc.setIn([...path, 'organization'], flow(change.organization))
  if (change.apis !== undefined) doc.setIn([...path, 'apis'], flow(change.apis))
}

// ---- in-place editing: each change is a text replacement at the source range of the node it changes ----

interface Edit { readonly start: number, readonly end: number, readonly text: string }

function editInPlace (text: string, doc: Document, change: TenantChange, plan: Plan): string | undefined {
  const root = doc.contents
  if (!isMap(root) || root.flow === true) return undefined
  const edits: Edit[] = []
  const tenantsPair = findPair(root, 'tenants')
  const tenants = tenantsPair?.value
  if (plan.isNewTenant) {
    const rootIndent = columnOf(text, keyStart(root) ?? 0)
    if (tenantsPair === undefined) {
      const block = renderTenant(change.tenant, plan.entry, rootIndent + 2, 2)
      edits.push({ start: text.length, end: text.length, text: `${text.endsWith('\n') || text === '' ? '' : '\n'}${stringify('tenants').trimEnd()}:\n${block}` })
    } else if (isMap(tenants) && tenants.items.length > 0) {
      if (tenants.flow === true) return undefined
      const indent = columnOf(text, keyStart(tenants) ?? 0)
      const block = renderTenant(change.tenant, plan.entry, indent, stepOf(text, tenants, indent))
      edits.push(insertAfterBlock(text, tenants, block))
    } else {
      // `tenants:` with nothing (or only comments) under it, or `tenants: {}`: put the new tenant below the key's line.
      const keyRange = (tenantsPair.key as Node | null)?.range
      if (keyRange === undefined || keyRange === null) return undefined
      if (isMap(tenants) && tenants.range !== undefined && tenants.range !== null) edits.push({ start: tenants.range[0], end: tenants.range[1], text: '' })
      const lineEnd = text.indexOf('\n', keyRange[1])
      const block = renderTenant(change.tenant, plan.entry, columnOf(text, keyRange[0]) + 2, 2)
      edits.push(lineEnd === -1 ? { start: text.length, end: text.length, text: `\n${block}` } : { start: lineEnd + 1, end: lineEnd + 1, text: block })
    }
    return applyEdits(text, edits)
  }
  const tenant = isMap(tenants) ? findPair(tenants, change.tenant)?.value : undefined
  if (!isMap(tenant)) return undefined
  const values: Array<[string, unknown]> = [['client', change.client]]
  if (plan.setClientId) values.push(['clientId', change.clientId])
  if (change.organization !== undefined) values.push(['organization', change.organization])
  if (change.apis !== undefined) values.push(['apis', change.apis])
  for (const [key, value] of values) {
    const edit = setValue(text, tenant, key, value)
    if (edit === undefined) return undefined
    edits.push(edit)
  }
  return applyEdits(text, edits)
}

function setValue (text: string, map: YAMLMap, key: string, value: unknown): Edit | undefined {
  const pair = findPair(map, key)
  if (pair === undefined) {
    if (map.flow === true) return undefined
    const indent = columnOf(text, keyStart(map) ?? 0)
    return insertAfterBlock(text, map, `${' '.repeat(indent)}${stringify(key).trimEnd()}: ${renderFlow(value, false)}\n`)
  }
  const node = pair.value as Node | null
  const range = node?.range
  if (node === null || range === undefined || range === null || range[1] <= range[0]) return undefined
  const old = text.slice(range[0], range[1])
  if (isScalar(node) || ((isSeq(node) || isMap(node)) && node.flow === true)) {
    return { start: range[0], end: range[1], text: renderFlow(value, /^[[{] /.test(old)) }
  }
  if (isSeq(node) || isMap(node)) {
    const indent = ' '.repeat(columnOf(text, range[0]))
    const lines = Array.isArray(value)
      ? value.map(item => `- ${renderScalar(item)}`)
      : Object.entries(value as Plain).map(([k, v]) => `${stringify(k).trimEnd()}: ${renderScalar(v)}`)
    return { start: range[0], end: range[1], text: `${lines.join(`\n${indent}`)}${old.endsWith('\n') ? '\n' : ''}` }
  }
  return undefined
}

/** An insertion of `block` (whole lines) right after the last line of a block collection. */
function insertAfterBlock (text: string, node: YAMLMap, block: string): Edit {
  const end = node.range?.[1] ?? text.length
  if (end > 0 && text[end - 1] === '\n') return { start: end, end, text: block }
  const lineEnd = text.indexOf('\n', end)
  return lineEnd === -1 ? { start: text.length, end: text.length, text: `\n${block}` } : { start: lineEnd + 1, end: lineEnd + 1, text: block }
}

function renderTenant (name: string, entry: Plan['entry'], indent: number, step: number): string {
  const inner = ' '.repeat(indent + step)
  const lines = [`${' '.repeat(indent)}${stringify(name).trimEnd()}:`, `${inner}client: ${renderScalar(entry.client)}`]
  if (entry.organization !== undefined) lines.push(`${inner}organization: ${renderFlow(entry.organization, true)}`)
  lines.push(`${inner}apis: ${renderFlow(entry.apis, false)}`)
  return `${lines.join('\n')}\n`
}

/** `[a, b]`, `{ child: "999977776" }` (the README's style) or a scalar; `isPadded` puts spaces inside the brackets. */
function renderFlow (value: unknown, isPadded: boolean): string {
  if (Array.isArray(value)) return isPadded ? `[ ${value.map(renderScalar).join(', ')} ]` : `[${value.map(renderScalar).join(', ')}]`
  if (isPlain(value)) {
    const items = Object.entries(value).map(([key, item]) => `${stringify(key).trimEnd()}: ${renderScalar(item)}`).join(', ')
    return `{ ${items} }`
  }
  return renderScalar(value)
}

function renderScalar (value: unknown): string {
  return stringify(value, { lineWidth: 0 }).trimEnd()
}

function applyEdits (text: string, edits: readonly Edit[]): string {
  const sorted = [...edits].sort((a, b) => b.start - a.start)
  let result = text
  for (const edit of sorted) result = result.slice(0, edit.start) + edit.text + result.slice(edit.end)
  return result
}

function isSameConfig (text: string, expected: unknown): boolean {
  const doc = parseDocument(text, { uniqueKeys: true })
  return doc.errors.length === 0 && doc.warnings.length === 0 && isDeepStrictEqual(doc.toJS({ maxAliasCount: 100 }), expected)
}

function findPair (map: YAMLMap, key: string): Pair | undefined {
  return map.items.find(pair => (isScalar(pair.key) ? String(pair.key.value) : String(pair.key)) === key)
}

function keyStart (map: YAMLMap): number | undefined {
  const first = map.items[0]?.key as Node | null | undefined
  return first?.range?.[0] ?? undefined
}

/** The indentation step of the tenants mapping: how far the first block tenant's keys sit inside its name; 2 by default. */
function stepOf (text: string, tenants: YAMLMap, indent: number): number {
  for (const pair of tenants.items) {
    if (!isMap(pair.value) || pair.value.flow === true) continue
    const start = keyStart(pair.value)
    if (start !== undefined && columnOf(text, start) > indent) return columnOf(text, start) - indent
  }
  return 2
}

function columnOf (text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1)
}

// ---- JSON configs: no comments to keep, so the object is edited and written back with the file's indentation ----

function parseJsonObject (text: string): Plain | undefined {
  if (!text.trimStart().startsWith('{')) return undefined
  try {
    const value: unknown = JSON.parse(text)
    return isPlain(value) ? value : undefined
  } catch {
    return undefined
  }
}

function updateJson (text: string, config: Plain, change: TenantChange, bom: string): ConfigUpdate {
  const plan = planChange(config, change)
  if (plan.changes.length === 0) return { text: bom + text, isNewTenant: false, changes: [], method: 'unchanged' }
  const tenants: Plain = isPlain(config.tenants) ? config.tenants : {}
  if (plan.isNewTenant) {
    tenants[change.tenant] = { ...plan.entry }
  } else {
    const tenant = tenants[change.tenant] as Plain
    tenant.client = change.client
    if (plan.setClientId) tenant.clientId = change.clientId
    if (change.organization !== undefined) tenant.organization = change.organization
    if (change.apis !== undefined) tenant.apis = change.apis
  }
  config.tenants = tenants
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  '
  return { text: `${bom}${JSON.stringify(config, null, indent)}${text.endsWith('\n') ? '\n' : ''}`, isNewTenant: plan.isNewTenant, changes: plan.changes, method: 'json' }
}

function isPlain (value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function describeEntry (entry: Plan['entry']): string {
  const organization = entry.organization === undefined ? '' : `, organization ${describeValue(entry.organization)}`
  return `client ${entry.client}${organization}, apis ${entry.apis.join(', ')}`
}

function describeValue (value: unknown): string {
  if (value === undefined) return '(none)'
  if (Array.isArray(value)) return value.map(String).join(', ')
  if (isPlain(value)) return Object.entries(value).map(([key, item]) => `${key} ${String(item)}`).join(' ')
  return String(value)
}
