// Reads each distinct client key's expiry from Selvbetjening at start and then periodically; keeps the result for /status, /readyz and /metrics.

import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import { BrokerError } from '../errors.ts'
import type { ClientKey } from '../keys/client-key.ts'
import type { TenantRuntime } from '../tenants.ts'
import { findClientSecret } from './client-secrets.ts'
import { selvbetjeningCallerOf, selvbetjeningScope, type SelvbetjeningCaller, type SelvbetjeningClient } from './selvbetjening-client.ts'

const dayMs = 86_400_000

/** What is known about one client key's expiry; a key shared by tenants (one client file) is checked once. */
export interface KeyExpiry {
  /** Every tenant using this key, in config order. */
  readonly tenants: readonly string[]
  readonly clientId: string
  readonly kid: string
  readonly file: string
  /** From the last successful check; kept when a later check fails. */
  readonly expiresAtMs: number | null
  /** Whole days left at the time of asking (negative once expired); null while unknown. */
  readonly daysLeft: number | null
  readonly isExpired: boolean
  /** Fewer than `warnDays` left (or expired). */
  readonly isExpiringSoon: boolean
  /** When the expiry was last read successfully. */
  readonly checkedAtMs: number | null
  /** Why the last check failed (`CODE: message`); null when it succeeded. */
  readonly lastError: string | null
  readonly lastErrorCode: string | null
}

export interface KeyExpiryOptions {
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  /** The tenants in force now, when they can be replaced (a reload); each check asks with the key a tenant uses then (a rotation switches it). */
  readonly currentTenants?: () => ReadonlyMap<string, TenantRuntime>
  readonly client: SelvbetjeningClient
  readonly clock: Clock
  readonly logger: Logger
  readonly warnDays: number
  readonly checkIntervalMs: number
}

export interface KeyExpiryService {
  /** Checks every key now without waiting, then every `checkIntervalMs`; idempotent. */
  readonly start: () => void
  readonly stop: () => void
  readonly isStarted: () => boolean
  /** Checks every key (concurrent callers share one round) and resolves with the result; never rejects. */
  readonly checkNow: () => Promise<readonly KeyExpiry[]>
  /** The current state of every distinct key. */
  readonly snapshot: () => readonly KeyExpiry[]
  /** The state of the key a tenant uses. */
  readonly forTenant: (tenant: string) => KeyExpiry | undefined
  /** Calls `listener` with the new state after every round of checks (automatic key rotation listens). */
  readonly onChecked: (listener: (expiries: readonly KeyExpiry[]) => void) => void
  readonly warnDays: number
}

interface Tracked {
  /** The first tenant as it was at start; `currentTenants` may hold a newer runtime of the same name. */
  readonly first: TenantRuntime
  readonly tenants: string[]
  /** The key the last successful check was for: after a rotation the expiry is unknown until the new key is checked. */
  checkedKid: string | null
  expiresAtMs: number | null
  checkedAtMs: number | null
  lastError: string | null
  lastErrorCode: string | null
}

/** Groups tenants by (client id, key thumbprint) and creates the service; nothing is fetched until start() or checkNow(). */
export function createKeyExpiryService (options: KeyExpiryOptions): KeyExpiryService {
  const { clock, logger, warnDays } = options
  const tracked = new Map<string, Tracked>()
  const byTenant = new Map<string, Tracked>()
  for (const tenant of options.tenants.values()) {
    const { clientId, key } = tenant.credentials
    const id = `${clientId}\u0000${key.thumbprint}`
    let entry = tracked.get(id)
    if (entry === undefined) {
      // The first tenant's DPoP key: one cached Selvbetjening token per key, whichever tenant comes first.
      entry = { first: tenant, tenants: [], checkedKid: null, expiresAtMs: null, checkedAtMs: null, lastError: null, lastErrorCode: null }
      tracked.set(id, entry)
    }
    entry.tenants.push(tenant.name)
    byTenant.set(tenant.name, entry)
  }
  let timer: NodeJS.Timeout | undefined
  let isStopped = false
  let round: Promise<readonly KeyExpiry[]> | undefined
  const listeners: Array<(expiries: readonly KeyExpiry[]) => void> = []

  const callerOf = (entry: Tracked): SelvbetjeningCaller =>
    selvbetjeningCallerOf(options.currentTenants?.().get(entry.first.name) ?? entry.first)

  const view = (entry: Tracked): KeyExpiry => {
    const nowMs = clock.nowMs()
    const caller = callerOf(entry)
    const isCurrent = entry.checkedKid === caller.key.kid
    const expiresAtMs = isCurrent ? entry.expiresAtMs : null
    const daysLeft = expiresAtMs === null ? null : Math.floor((expiresAtMs - nowMs) / dayMs)
    return {
      tenants: [...entry.tenants],
      clientId: caller.clientId,
      kid: caller.key.kid,
      file: caller.key.file,
      expiresAtMs,
      daysLeft,
      isExpired: expiresAtMs !== null && expiresAtMs <= nowMs,
      isExpiringSoon: daysLeft !== null && daysLeft < warnDays,
      checkedAtMs: isCurrent ? entry.checkedAtMs : null,
      lastError: entry.lastError,
      lastErrorCode: entry.lastErrorCode
    }
  }

  const checkOne = async (entry: Tracked): Promise<void> => {
    const caller = callerOf(entry)
    const fields = { tenant: entry.tenants.join(','), clientId: caller.clientId, kid: caller.key.kid }
    try {
      const secrets = await options.client.listClientSecrets(caller)
      const secret = findClientSecret(secrets, caller.key)
      if (secret === undefined) throw new KeyNotListedError(caller.clientId, caller.key, secrets.length)
      entry.checkedKid = caller.key.kid
      entry.expiresAtMs = secret.expiresAtMs
      entry.checkedAtMs = clock.nowMs()
      entry.lastError = null
      entry.lastErrorCode = null
    } catch (error) {
      if (isStopped) return
      entry.lastErrorCode = error instanceof BrokerError ? error.code : error instanceof KeyNotListedError ? 'KEY_NOT_LISTED' : 'BROKER_INTERNAL'
      entry.lastError = describeFailure(error)
      logger.warn({ ...fields, code: entry.lastErrorCode, reason: entry.lastError }, 'key expiry check failed')
      return
    }
    const current = view(entry)
    if (current.isExpired) logger.error({ ...fields, expiresAt: new Date(current.expiresAtMs ?? 0).toISOString(), daysLeft: current.daysLeft }, 'key expired')
    else if (current.isExpiringSoon) logger.warn({ ...fields, expiresAt: new Date(current.expiresAtMs ?? 0).toISOString(), daysLeft: current.daysLeft, warnDays }, 'key expires soon')
    else logger.info({ ...fields, expiresAt: new Date(current.expiresAtMs ?? 0).toISOString(), daysLeft: current.daysLeft }, 'key expiry checked')
  }

  const snapshot = (): readonly KeyExpiry[] => [...tracked.values()].map(view)

  const checkNow = (): Promise<readonly KeyExpiry[]> => {
    round ??= Promise.all([...tracked.values()].map(checkOne))
      .then(snapshot)
      .then(expiries => {
        for (const listener of isStopped ? [] : listeners) {
          try { listener(expiries) } catch (error) { logger.error({ err: error }, 'key expiry listener failed') }
        }
        return expiries
      })
      .finally(() => { round = undefined })
    return round
  }

  return {
    warnDays,
    start () {
      if (timer !== undefined || isStopped) return
      checkNow().catch(() => {})
      timer = setInterval(() => { checkNow().catch(() => {}) }, options.checkIntervalMs)
      timer.unref()
    },
    stop () {
      isStopped = true
      if (timer !== undefined) clearInterval(timer)
    },
    isStarted: () => timer !== undefined && !isStopped,
    checkNow,
    snapshot,
    forTenant (tenant) {
      const entry = byTenant.get(tenant)
      return entry === undefined ? undefined : view(entry)
    },
    onChecked (listener) { listeners.push(listener) }
  }
}

/** The key is valid locally but Selvbetjening does not list it for the client (retired, or registered for another client). */
class KeyNotListedError extends Error {
  constructor (clientId: string, key: Pick<ClientKey, 'kid'>, listed: number) {
    super(`Selvbetjening lists ${listed} key(s) for client ${clientId}, none with kid ${key.kid} or this key's thumbprint`)
    this.name = 'KeyNotListedError'
  }
}

function describeFailure (error: unknown): string {
  if (error instanceof KeyNotListedError) return error.message
  if (!(error instanceof BrokerError)) return 'unexpected error; the log has the details'
  const hint = error.code === 'BROKER_IDP_REJECTED' && error.extra.oauthError === 'invalid_scope'
    ? ` (the client's registration in Selvbetjening must include scope ${selvbetjeningScope})`
    : ''
  return `${error.code}: ${error.message}${hint}`
}

/** One readiness line for /readyz: ready unless a key has expired. */
export function keyExpiryReadiness (expiries: readonly KeyExpiry[], warnDays: number): { isReady: boolean, detail: string } {
  const parts = expiries.map(expiry => {
    const who = expiry.tenants.join(', ')
    if (expiry.isExpired) return `${who}: key ${expiry.kid} expired ${new Date(expiry.expiresAtMs ?? 0).toISOString()}`
    if (expiry.daysLeft !== null) {
      const soon = expiry.isExpiringSoon ? ` (fewer than ${warnDays}; rotate it)` : ''
      const stale = expiry.lastError === null ? '' : `; last check failed: ${expiry.lastError}`
      return `${who}: key expires in ${expiry.daysLeft} days${soon}${stale}`
    }
    return expiry.lastError === null ? `${who}: key expiry not checked yet` : `${who}: key expiry unknown: ${expiry.lastError}`
  })
  return { isReady: !expiries.some(expiry => expiry.isExpired), detail: parts.join('; ') }
}
