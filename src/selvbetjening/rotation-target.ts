// Who a key rotation is for: one client file and every tenant using it (a multi-tenant supplier's tenants rotate once, together).

import type { TenantRuntime } from '../tenants.ts'
import type { SelvbetjeningCaller } from './selvbetjening-client.ts'

/** One client file and everyone using it: tenants sharing a file (a multi-tenant supplier) rotate once, together. */
export interface RotationTarget {
  /** Absolute path, as the tenants' ClientKey names it. */
  readonly file: string
  readonly clientId: string
  readonly tenants: readonly string[]
  /** The first tenant with its current (working) key and DPoP key: registers the new key and asks Selvbetjening. */
  readonly caller: SelvbetjeningCaller
}

/** A rotation that did not complete; the working key is unchanged, and the message says what is left (a pending file). */
export class KeyRotationError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'KeyRotationError'
  }
}

/** One target per distinct client file, tenants in config order. */
export function rotationTargets (tenants: ReadonlyMap<string, TenantRuntime>): readonly RotationTarget[] {
  const files = new Set([...tenants.values()].map(tenant => tenant.credentials.key.file))
  return [...files].map(file => targetOfFile(tenants, file))
}

/** The target holding a tenant's client file. @throws KeyRotationError for an unknown tenant or tenants of one file naming different clients */
export function rotationTargetOf (tenants: ReadonlyMap<string, TenantRuntime>, tenant: string): RotationTarget {
  const runtime = tenants.get(tenant)
  if (runtime === undefined) throw new KeyRotationError(`no tenant named "${tenant}"`)
  return targetOfFile(tenants, runtime.credentials.key.file)
}

function targetOfFile (tenants: ReadonlyMap<string, TenantRuntime>, file: string): RotationTarget {
  const sharing = [...tenants.values()].filter(tenant => tenant.credentials.key.file === file)
  const [first] = sharing
  if (first === undefined) throw new KeyRotationError(`no tenant uses ${file}`)
  const clientIds = new Set(sharing.map(tenant => tenant.credentials.clientId))
  if (clientIds.size > 1) {
    throw new KeyRotationError(`tenants ${sharing.map(tenant => tenant.name).join(', ')} share ${file} but name different client ids (${[...clientIds].join(', ')}); a rotation would register the new key for one client only, so rotate such a key by hand`)
  }
  return {
    file,
    clientId: first.credentials.clientId,
    tenants: sharing.map(tenant => tenant.name),
    caller: { tenant: first.name, clientId: first.credentials.clientId, key: first.credentials.key, dpopKey: first.dpopKey }
  }
}
