// Key rotation inside `serve`: pending keys are resolved at start (and after every expiry check), and with keys.autoRotate a
// key with fewer than keys.rotateDays left is rotated once per client file; the running tenants then switch to the new key.

import type { Logger } from 'pino'
import type { Clock } from '../clock.ts'
import type { KeysConfig } from '../config/config.ts'
import { BrokerError } from '../errors.ts'
import { replaceClientKey, type TenantRuntime } from '../tenants.ts'
import type { TokenService } from '../tokens/token-service.ts'
import type { KeyExpiry, KeyExpiryService } from './key-expiry.ts'
import {
  KeyRotationError, resolvePendingKey, rotateClientKey, rotationTargetOf, rotationTargets,
  type KeyRotationOptions, type PendingResolution, type RotatedKey, type RotationTarget
} from './key-rotation.ts'
import type { SelvbetjeningClient } from './selvbetjening-client.ts'

export interface KeyRotationServiceOptions {
  /** The tenants in force now (a reload may replace them). */
  readonly tenants: () => ReadonlyMap<string, TenantRuntime>
  readonly selvbetjening: SelvbetjeningClient
  readonly tokens: TokenService
  readonly keyExpiry: KeyExpiryService
  readonly clock: Clock
  readonly logger: Logger
  readonly keys: Pick<KeysConfig, 'autoRotate' | 'rotateDays' | 'expiryCheckHours'>
  /** Passed on to rotateClientKey (tests shorten the waits). */
  readonly verifyDelaysMs?: readonly number[]
}

export interface KeyRotationService {
  /** Resolves pending keys now, in the background; with keys.autoRotate, rotates after expiry checks. Idempotent. */
  readonly start: () => void
  readonly stop: () => void
  /** Resolves the pending key of every client file (concurrent callers share a round); promoted keys are switched to. Never rejects. */
  readonly resolvePending: () => Promise<readonly PendingResolution[]>
  /** Rotates the key of the client file `tenant` uses, once per file at a time; every tenant of the file switches to the new key. */
  readonly rotate: (tenant: string) => Promise<RotatedKey>
  /** Settles when no resolution or rotation is running or queued. */
  readonly idle: () => Promise<void>
}

/** Creates the service; nothing runs until start(), resolvePending() or rotate(). */
export function createKeyRotationService (options: KeyRotationServiceOptions): KeyRotationService {
  const { logger, clock } = options
  const rotationOptions: KeyRotationOptions = {
    selvbetjening: options.selvbetjening,
    tokens: options.tokens,
    clock,
    onProgress: (step, detail) => { logger.debug({ step, detail }, 'key rotation step') },
    onResolved: resolution => {
      if (resolution.outcome === 'discarded') logger.warn({ kid: resolution.kid, reason: resolution.reason, discardedFile: resolution.discardedFile }, 'pending key discarded')
      else if (resolution.outcome === 'kept') logger.warn({ reason: resolution.reason }, 'pending key unresolved; kept for a later try')
    },
    ...(options.verifyDelaysMs === undefined ? {} : { verifyDelaysMs: options.verifyDelaysMs })
  }
  // Per client file, the work running or queued: a resolution and a rotation of one file never overlap.
  const lanes = new Map<string, Promise<unknown>>()
  const rotations = new Map<string, Promise<RotatedKey>>()
  const lastAutomaticMs = new Map<string, number>()
  let resolving: Promise<readonly PendingResolution[]> | undefined
  let isStarted = false
  let isStopped = false

  const inLane = <T>(file: string, task: () => Promise<T>): Promise<T> => {
    const run = (lanes.get(file) ?? Promise.resolve()).catch(() => {}).then(task)
    lanes.set(file, run)
    run.catch(() => {}).finally(() => { if (lanes.get(file) === run) lanes.delete(file) }).catch(() => {})
    return run
  }

  const switchTo = (result: RotatedKey, target: RotationTarget): void => {
    const switched = replaceClientKey(options.tenants(), result.key)
    logger.info({
      tenants: target.tenants, file: target.file, kid: result.key.kid, previousKid: result.previousKid, expiresAt: result.expiration,
      backupFile: result.backupFile, switched
    }, result.outcome === 'rotated' ? 'key rotated' : 'pending key promoted')
    // Read the new key's expiry now rather than at the next interval.
    if (switched.length > 0) options.keyExpiry.checkNow().catch(() => {})
  }

  const resolveOne = async (target: RotationTarget): Promise<PendingResolution> => {
    const fields = { tenants: target.tenants, file: target.file }
    try {
      const result = await resolvePendingKey(target, rotationOptions)
      if (result.outcome === 'pending-promoted') switchTo(result, target)
      return result
    } catch (error) {
      logger.error({ ...fields, err: error }, 'pending key check failed; kept for a later try')
      return { outcome: 'kept', reason: error instanceof Error ? error.message : String(error) }
    }
  }

  const resolvePending = (): Promise<readonly PendingResolution[]> => {
    resolving ??= Promise.all(currentTargets().map(async target => await inLane(target.file, async () => await resolveOne(target))))
      .finally(() => { resolving = undefined })
    return resolving
  }

  const currentTargets = (): readonly RotationTarget[] => {
    try {
      return rotationTargets(options.tenants())
    } catch (error) {
      logger.error({ err: error }, 'key rotation cannot group the tenants by client file')
      return []
    }
  }

  const rotate = (tenant: string): Promise<RotatedKey> => {
    const file = options.tenants().get(tenant)?.credentials.key.file
    if (file === undefined) return Promise.reject(new KeyRotationError(`no tenant named "${tenant}"`))
    const running = rotations.get(file)
    if (running !== undefined) return running
    const rotation = inLane(file, async () => {
      // Built inside the lane: a resolution before it may have switched the key.
      const target = rotationTargetOf(options.tenants(), tenant)
      logger.info({ tenants: target.tenants, file: target.file, kid: target.caller.key.kid }, 'key rotation started')
      try {
        const result = await rotateClientKey(target, rotationOptions)
        switchTo(result, target)
        return result
      } catch (error) {
        const code = error instanceof BrokerError ? error.code : error instanceof KeyRotationError ? 'KEY_ROTATION_FAILED' : 'BROKER_INTERNAL'
        logger.error({ tenants: target.tenants, file: target.file, code, reason: error instanceof Error ? error.message : String(error) }, 'key rotation failed; the working key is unchanged')
        throw error
      }
    }).finally(() => { rotations.delete(file) })
    rotations.set(file, rotation)
    return rotation
  }

  // At most one automatic attempt per client file per expiry check interval: a failure waits for the next round.
  const onChecked = (expiries: readonly KeyExpiry[]): void => {
    if (isStopped) return
    resolvePending().catch(() => {})
    if (!options.keys.autoRotate) return
    const minGapMs = options.keys.expiryCheckHours * 3_600_000 / 2
    for (const expiry of expiries) {
      const [tenant] = expiry.tenants
      if (tenant === undefined || expiry.daysLeft === null || expiry.lastError !== null || expiry.daysLeft >= options.keys.rotateDays) continue
      const lastMs = lastAutomaticMs.get(expiry.file)
      if (lastMs !== undefined && clock.nowMs() - lastMs < minGapMs) continue
      lastAutomaticMs.set(expiry.file, clock.nowMs())
      logger.info({ tenants: expiry.tenants, kid: expiry.kid, daysLeft: expiry.daysLeft, rotateDays: options.keys.rotateDays }, 'key due for rotation')
      rotate(tenant).catch(() => {}) // logged in rotate
    }
  }

  return {
    start () {
      if (isStarted || isStopped) return
      isStarted = true
      resolvePending().catch(() => {})
      options.keyExpiry.onChecked(onChecked)
    },
    stop () { isStopped = true },
    resolvePending,
    rotate,
    async idle () {
      while (lanes.size > 0 || resolving !== undefined) {
        await Promise.allSettled([...lanes.values(), ...(resolving === undefined ? [] : [resolving])])
      }
    }
  }
}
