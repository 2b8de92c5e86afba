// `keys rotate`: rotate the key of a tenant's client file through the Selvbetjening API, never losing the working key.

import type { CliIo } from '../cli.ts'
import { loadConfigFiles, withDependencies } from './load-files.ts'
import { loadConfig } from '../config/load-config.ts'
import { BrokerError, exitCodes } from '../errors.ts'
import { KeyRotationError, rotateClientKey, rotationSteps, rotationTargetOf, type RotationStep } from '../selvbetjening/key-rotation.ts'

export interface KeysRotateCommand {
  readonly configPath: string
  readonly tenant: string
  /** Accept key and secret files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions?: boolean
  /** Test hook from HELSEID_BROKER_ROTATION_PAUSE_AFTER: stop after this step, print a marker line and wait to be killed. */
  readonly pauseAfter?: RotationStep
}

/** The environment variable the kill tests set; read by the CLI entry only. */
export const rotationPauseVariable = 'HELSEID_BROKER_ROTATION_PAUSE_AFTER'

/** A step name, or undefined when `value` is none. */
export function parseRotationStep (value: string): RotationStep | undefined {
  return rotationSteps.find(step => step === value)
}

/** Rotates; exit 0 when the client file holds a new, proven key; 1 when it could not (the working key is unchanged); 64 for an unknown tenant. */
export async function runKeysRotate (command: KeysRotateCommand, io: CliIo): Promise<number> {
  const config = await loadConfig(command.configPath)
  if (config.tenants[command.tenant] === undefined) {
    io.err(`no tenant named "${command.tenant}" in ${config.source}; configured: ${Object.keys(config.tenants).join(', ')}`)
    return exitCodes.usage
  }
  const fileOptions = { allowInsecurePermissions: command.allowInsecurePermissions === true }
  // The tenant is checked above, before any key file is read: an unknown tenant is a usage error whatever the files hold.
  const files = await loadConfigFiles(config, fileOptions)
  return await withDependencies(files, {}, async deps => {
    try {
      const target = rotationTargetOf(deps.tenants, command.tenant)
      io.out(`Rotating the key of client ${target.clientId} (tenants: ${target.tenants.join(', ')}) in ${target.file}`)
      io.out(`  current key ${target.caller.key.kid} (${target.caller.key.alg}, ${target.caller.key.sizeBits} bits)`)
      const pauseAfter = command.pauseAfter
      const result = await rotateClientKey(target, {
        selvbetjening: deps.selvbetjening,
        tokens: deps.tokens,
        clock: deps.clock,
        fileOptions,
        onProgress: (_step, detail) => { io.out(`  ${detail}`) },
        onResolved: resolution => {
          if (resolution.outcome === 'discarded') io.out(`  discarded the pending key ${resolution.kid} of an earlier rotation (${resolution.reason}); kept as ${resolution.discardedFile}`)
          else if (resolution.outcome === 'pending-promoted') io.out(`  the pending key ${resolution.key.kid} of an interrupted rotation works: promoted`)
        },
        ...(pauseAfter === undefined ? {} : { pauseAfter: { step: pauseAfter, pause: async () => { await pauseForever(pauseAfter, io) } } })
      })
      if (result.outcome === 'pending-promoted') {
        io.out(`A pending key from an interrupted rotation was accepted by HelseID and promoted; no second key was made.`)
      }
      io.out(`Done: ${target.file} holds key ${result.key.kid}${result.expiration === null ? '' : `, expiring ${result.expiration}`} (previous key ${result.previousKid}).`)
      if (result.backupFile !== null) io.out(`The previous key file is kept as ${result.backupFile}; it stays registered until it expires or is removed in Selvbetjening.`)
      io.out('Restart (or reload) running brokers that use this file, so they sign with the new key; with keys.autoRotate the broker rotates by itself.')
      return exitCodes.ok
    } catch (error) {
      if (!(error instanceof KeyRotationError || error instanceof BrokerError)) throw error
      io.err(`${error instanceof BrokerError ? `${error.code}: ` : ''}${error.message}`)
      return exitCodes.failure
    }
  })
}

async function pauseForever (step: RotationStep, io: CliIo): Promise<never> {
  io.err(`rotation paused after step ${step} (${rotationPauseVariable})`)
  // A timer keeps the process alive until the test kills it.
  return await new Promise<never>(() => { setInterval(() => {}, 60_000) })
}
