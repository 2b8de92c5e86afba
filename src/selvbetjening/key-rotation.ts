// Rotating a client key through Selvbetjening without ever losing the working key (helseid-protocol.md §6.2): generate,
// persist as pending, register, prove, back up and promote, drop the pending file; each step is durable before the next.

import { realpath, stat } from 'node:fs/promises'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose'
import type { Clock } from '../clock.ts'
import { BrokerError } from '../errors.ts'
import type { ClientKey } from '../keys/client-key.ts'
import { loadClientKey, parseClientKey } from '../keys/load-client-key.ts'
import type { ProtectedFileOptions } from '../keys/protected-file.ts'
import { isErrnoException, writeBackup, writeFileAtomic } from '../onboarding/atomic-write.ts'
import type { TokenService } from '../tokens/token-service.ts'
import { proveKey, proveRegisteredKey, registrationOf } from './key-proof.ts'
import {
  discardPendingKey, loadPendingKey, pendingKeyPath, readClientFile, removePendingKey, renderClientFile, savePendingKey, type PendingKey
} from './rotation-files.ts'
import { KeyRotationError, type RotationTarget } from './rotation-target.ts'
import type { SelvbetjeningClient } from './selvbetjening-client.ts'

export { KeyRotationError, rotationTargetOf, rotationTargets, type RotationTarget } from './rotation-target.ts'

/** The durable steps of a rotation, in order; a kill after any of them leaves a broker whose key works. */
export const rotationSteps = ['generated', 'pending-saved', 'registered', 'pending-registered', 'verified', 'backed-up', 'promoted'] as const
export type RotationStep = typeof rotationSteps[number]

export interface KeyRotationOptions {
  readonly selvbetjening: SelvbetjeningClient
  readonly tokens: TokenService
  readonly clock: Clock
  /** How the pending file is read (it is written with mode 0600). */
  readonly fileOptions?: ProtectedFileOptions
  /** One event per step: the CLI prints them, serve logs them. */
  readonly onProgress?: (step: RotationStep, detail: string) => void
  /** What became of a pending key found (not called when there was none). */
  readonly onResolved?: (resolution: Exclude<PendingResolution, { readonly outcome: 'none' }>) => void
  /** Waits between attempts to prove a just-registered key (HelseID may take a while to accept it); default 2, 5, 15, 30 s. */
  readonly verifyDelaysMs?: readonly number[]
  /** How long a registered pending key that HelseID refuses is kept for another try; default 24 h. */
  readonly registeredGraceMs?: number
  /** Test hook (HELSEID_BROKER_ROTATION_PAUSE_AFTER, kill tests): after `step`, await `pause()`, which there never returns. */
  readonly pauseAfter?: { readonly step: RotationStep, readonly pause: () => Promise<void> }
}

/** A new key in the client file. */
export interface RotatedKey {
  /** `rotated`: this call rotated; `pending-promoted`: a pending key from an interrupted rotation was proven and promoted. */
  readonly outcome: 'rotated' | 'pending-promoted'
  /** The new key, as the client file now holds it. */
  readonly key: ClientKey
  readonly previousKid: string
  /** The new key's expiry as Selvbetjening answered the registration, when known. */
  readonly expiration: string | null
  /** The previous client file, kept as `<file>.<UTC time>.bak`; null when the file held the new key already. */
  readonly backupFile: string | null
}

/** What became of a pending key found on start (or before a rotation). */
export type PendingResolution =
  | { readonly outcome: 'none' }
  | RotatedKey & { readonly outcome: 'pending-promoted' }
  | { readonly outcome: 'discarded', readonly kid: string, readonly reason: string, readonly discardedFile: string }
  | { readonly outcome: 'kept', readonly reason: string }

const dayMs = 86_400_000

/**
 * Rotates the target's key: first resolves a pending key left by an interrupted rotation (when that one is proven and
 * promoted, it is the result and no second key is made), then runs every step. The client file is replaced only after
 * HelseID has accepted the new key, and only atomically, with the previous file kept as a backup.
 * @throws KeyRotationError (or BrokerError from Selvbetjening or HelseID) with the working key unchanged
 */
export async function rotateClientKey (target: RotationTarget, options: KeyRotationOptions): Promise<RotatedKey> {
  const paths = await pathsOf(target.file)
  const earlier = await resolvePendingKey(target, options)
  if (earlier.outcome === 'pending-promoted') return earlier
  if (earlier.outcome === 'kept') throw new KeyRotationError(`a pending key from an earlier rotation (${paths.pendingFile}) is not resolved yet: ${earlier.reason}; nothing was changed, try again later`)
  const step = stepper(options)
  const current = target.caller.key
  const onDisk = await loadClientKey(paths.clientFile, { allowInsecurePermissions: true })
  if (onDisk.thumbprint !== current.thumbprint) {
    throw new KeyRotationError(`${target.file} holds key ${onDisk.kid}, not the key ${current.kid} in use; restart the broker with the file as it is before rotating`)
  }

  const fresh = await generateRotationKey(target.file)
  await step('generated', `generated a new RSA 4096 key for PS256, kid ${fresh.key.kid}`)
  let pending: PendingKey = {
    state: 'generated',
    clientId: target.clientId,
    createdAt: isoAt(options.clock),
    replacesKid: current.kid,
    replacesThumbprint: current.thumbprint,
    privateJwk: fresh.privateJwk
  }
  await writing(`save the pending key ${paths.pendingFile}; nothing was registered`, async () => { await savePendingKey(paths.pendingFile, pending) })
  await step('pending-saved', `saved it as pending: ${paths.pendingFile} (mode 0600)`)

  let expiration: string
  try {
    expiration = (await options.selvbetjening.registerClientSecret(target.caller, fresh.key.publicJwk)).expiration
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error
    throw new KeyRotationError(`Selvbetjening did not register the new key: ${error.code}: ${error.message}; the working key is unchanged, and the pending key is checked (and discarded, if HelseID does not know it) on the next rotation or broker start`, { cause: error })
  }
  await step('registered', `registered its public key with Selvbetjening; it expires ${expiration}`)
  pending = { ...pending, state: 'registered', registeredAt: isoAt(options.clock), expiration }
  const later = `; the working key is unchanged, and the pending key ${paths.pendingFile} is promoted on the next rotation or broker start`
  await writing(`mark the pending key as registered${later}`, async () => { await savePendingKey(paths.pendingFile, pending) })
  await step('pending-registered', 'marked the pending key as registered')

  await proveRegisteredKey(target, fresh.key, options, paths.pendingFile)
  await step('verified', 'HelseID issued a token for a client assertion signed with the new key')
  const backupFile = await writing(`replace ${target.file}${later}`, async () => await promote(paths, target, fresh, options))
  return { outcome: 'rotated', key: fresh.key, previousKid: current.kid, expiration, backupFile }
}

/**
 * Settles a pending key left by an interrupted or refused rotation: a key HelseID accepts is promoted into the client file;
 * one HelseID calls invalid_client was never registered (or is not usable) and is moved aside as `.discarded-<time>`;
 * when HelseID cannot be asked, it stays pending for the next try. Never touches a working client file otherwise.
 */
export async function resolvePendingKey (target: RotationTarget, options: KeyRotationOptions): Promise<PendingResolution> {
  const resolution = await resolve(target, options)
  if (resolution.outcome !== 'none') options.onResolved?.(resolution)
  return resolution
}

async function resolve (target: RotationTarget, options: KeyRotationOptions): Promise<PendingResolution> {
  let paths: Paths
  try {
    paths = await pathsOf(target.file)
  } catch {
    return { outcome: 'none' } // no client file on disk (the demo's keys live in memory)
  }
  const found = await loadPendingKey(paths.pendingFile, target.file, options.fileOptions)
  if (found.kind === 'absent') return { outcome: 'none' }
  if (found.kind === 'unreadable') return { outcome: 'kept', reason: found.reason }
  const discard = async (kid: string, reason: string): Promise<PendingResolution> =>
    ({ outcome: 'discarded', kid, reason, discardedFile: await discardPendingKey(paths.pendingFile, new Date(options.clock.nowMs())) })
  if (found.kind === 'invalid') return await discard('(unknown)', `the pending file is unusable: ${found.reason}`)
  const { pending, key } = found
  if (pending.clientId !== target.clientId) return await discard(key.kid, `it was made for client ${pending.clientId}, but ${target.file} is client ${target.clientId}'s`)
  const onDisk = await loadClientKey(paths.clientFile, { allowInsecurePermissions: true })
  const promoted = { outcome: 'pending-promoted', previousKid: pending.replacesKid, expiration: pending.expiration ?? null } as const
  if (onDisk.thumbprint === key.thumbprint) {
    // Killed after the promotion, before the pending file was removed.
    await removePendingKey(paths.pendingFile)
    return { ...promoted, key, backupFile: null }
  }
  if (onDisk.thumbprint !== pending.replacesThumbprint) {
    return await discard(key.kid, `${target.file} now holds key ${onDisk.kid}, not the key ${pending.replacesKid} the rotation replaced (the file was changed since)`)
  }
  const verdict = await proveKey(target, key, options)
  if (verdict.isAccepted) {
    const backupFile = await promote(paths, target, { key, privateJwk: pending.privateJwk }, options)
    return { ...promoted, key, backupFile }
  }
  if (!verdict.isRejected) return { outcome: 'kept', reason: `HelseID could not be asked about it: ${verdict.reason}` }
  // HelseID refuses it. Selvbetjening listing it means a registration HelseID has not picked up yet: keep it for a while.
  const registration = await registrationOf(target, key, options)
  // Without Selvbetjening's answer a registered key cannot be told from one never registered: keep it until it can.
  if ('unknown' in registration) {
    return { outcome: 'kept', reason: `HelseID refuses it (${verdict.reason}), and Selvbetjening could not be asked whether it is registered (${registration.unknown})` }
  }
  const { isListed } = registration
  const ageMs = options.clock.nowMs() - Date.parse(pending.registeredAt ?? pending.createdAt)
  if (isListed && ageMs < (options.registeredGraceMs ?? dayMs)) {
    return { outcome: 'kept', reason: `Selvbetjening lists key ${key.kid} but HelseID does not accept it yet (${verdict.reason})` }
  }
  return await discard(key.kid, isListed
    ? `HelseID still refuses it (${verdict.reason}) ${Math.floor(ageMs / 3_600_000)} h after it was registered`
    : `HelseID does not accept it (${verdict.reason}): it was never registered`)
}

/** A new RSA 4096 key for PS256, like NHN's own rotation; kid = RFC 7638 thumbprint. */
export async function generateRotationKey (file: string): Promise<{ readonly key: ClientKey, readonly privateJwk: JWK }> {
  const { privateKey } = await generateKeyPair('PS256', { modulusLength: 4096, extractable: true })
  const exported = await exportJWK(privateKey)
  const privateJwk: JWK = { ...exported, kid: await calculateJwkThumbprint(exported, 'sha256'), alg: 'PS256', use: 'sig' }
  return { key: await parseClientKey(privateJwk, file), privateJwk }
}

interface Paths {
  /** The client file's real path: a symbolic link is written through, not replaced. */
  readonly clientFile: string
  readonly pendingFile: string
}

async function pathsOf (file: string): Promise<Paths> {
  const clientFile = await realpath(file)
  return { clientFile, pendingFile: pendingKeyPath(clientFile) }
}

function stepper (options: KeyRotationOptions): (step: RotationStep, detail: string) => Promise<void> {
  return async (step, detail) => {
    options.onProgress?.(step, detail)
    if (options.pauseAfter?.step === step) await options.pauseAfter.pause()
  }
}

/** Backup, then the atomic replacement, then the pending file goes; the rendered file is parsed before anything is written. */
async function promote (paths: Paths, target: RotationTarget, fresh: { readonly key: ClientKey, readonly privateJwk: JWK }, options: KeyRotationOptions): Promise<string> {
  const step = stepper(options)
  const currentText = await readClientFile(paths.clientFile)
  const nextText = renderClientFile(currentText, fresh.privateJwk)
  const check = await parseClientKey(JSON.parse(nextText), target.file)
  if (check.thumbprint !== fresh.key.thumbprint || (check.clientId !== undefined && check.clientId !== target.clientId)) {
    throw new TypeError(`the rewritten ${target.file} would not hold the new key for client ${target.clientId}`)
  }
  const { uid, gid } = await stat(paths.clientFile)
  const backupFile = await writeBackup(paths.clientFile, currentText, new Date(options.clock.nowMs()))
  await step('backed-up', `kept the previous key file as ${backupFile}`)
  await writeFileAtomic(paths.clientFile, nextText, { mode: 0o600, owner: { uid, gid } })
  await step('promoted', `${paths.clientFile} now holds key ${fresh.key.kid}`)
  await removePendingKey(paths.pendingFile)
  return backupFile
}

/** Runs a file operation; a file system error (EACCES, ENOSPC, a read-only directory) becomes a KeyRotationError saying what is left. */
async function writing<T> (what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    if (!isErrnoException(error)) throw error
    throw new KeyRotationError(`could not ${what} (${error.code})`, { cause: error })
  }
}

function isoAt (clock: Clock): string {
  return new Date(clock.nowMs()).toISOString()
}
