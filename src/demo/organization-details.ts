// Reads organisation numbers from a client assertion's assertion_details claim (helseid-protocol.md §4.2).

/** Identifier system of the multi-tenant form `NO:ORGNR:<parent>[:<child>]`. */
export const multiTenantSystem = 'urn:oid:1.0.6523'
/** Identifier system of the single-tenant child form `<child>`. */
export const singleTenantChildSystem = 'urn:oid:2.16.578.1.12.4.1.4.101'

/** Organisation numbers the token will carry. */
export interface OrganizationNumbers {
  readonly parent?: string
  readonly child?: string
}

/** How the client is registered. */
export interface OrganizationPolicy {
  readonly multiTenant: boolean
  /** A single-tenant client's own organisation number. */
  readonly organization?: string
}

/** Either the organisation numbers or the HelseID-style error description to answer with. */
export type OrganizationResult =
  | { readonly ok: true, readonly numbers: OrganizationNumbers }
  | { readonly ok: false, readonly description: string }

const multiTenantValue = /^NO:ORGNR:(\d{9})(?::(\d{9})?)?$/
const nineDigits = /^\d{9}$/

/** Applies HelseID's rules: multi-tenant clients must name a parent; single-tenant clients may name a child. */
export function parseOrganizationDetails (details: unknown, policy: OrganizationPolicy): OrganizationResult {
  const found = findHelseIdAuthorization(details)
  if (found === 'invalid') return fail('HID-1007 assertion_details does not follow the specification')
  if (found === undefined) {
    if (policy.multiTenant) return fail('HID-1007 a multi-tenant client must send assertion_details with NO:ORGNR:<parent>')
    return ok(policy.organization === undefined ? {} : { parent: policy.organization })
  }
  const identifier = readIdentifier(found)
  if (identifier === undefined) return fail('HID-1007 assertion_details lacks practitioner_role.organization.identifier {system, type: ENH, value}')
  if (policy.multiTenant) {
    if (identifier.system !== multiTenantSystem) return fail(`HID-1007 a multi-tenant client must use system ${multiTenantSystem}`)
    const match = multiTenantValue.exec(identifier.value)
    if (match === null) return fail('HID-1007 the value must be NO:ORGNR:<9 digits>[:<9 digits>]')
    const [, parent, child] = match
    return ok({ ...(parent === undefined ? {} : { parent }), ...(child === undefined ? {} : { child }) })
  }
  if (identifier.system !== singleTenantChildSystem) return fail(`HID-1007 a single-tenant client names a child with system ${singleTenantChildSystem}`)
  if (!nineDigits.test(identifier.value)) return fail('HID-1004 the child organisation number must be nine digits')
  return ok({ ...(policy.organization === undefined ? {} : { parent: policy.organization }), child: identifier.value })
}

/** The single `helseid_authorization` entry (object or inside an array), undefined when absent. */
function findHelseIdAuthorization (details: unknown): Record<string, unknown> | undefined | 'invalid' {
  if (details === undefined) return undefined
  const entries = Array.isArray(details) ? details : [details]
  if (!entries.every(isRecord)) return 'invalid'
  const matching = entries.filter(entry => entry.type === 'helseid_authorization')
  if (matching.length > 1) return 'invalid'
  return matching[0]
}

function readIdentifier (entry: Record<string, unknown>): { system: unknown, value: string } | undefined {
  const role = entry.practitioner_role
  const organization = isRecord(role) ? role.organization : undefined
  const identifier = isRecord(organization) ? organization.identifier : undefined
  if (!isRecord(identifier) || identifier.type !== 'ENH' || typeof identifier.value !== 'string') return undefined
  return { system: identifier.system, value: identifier.value }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function ok (numbers: OrganizationNumbers): OrganizationResult {
  return { ok: true, numbers }
}

function fail (description: string): OrganizationResult {
  return { ok: false, description }
}
