// Loads every caller's secret at start-up: a parsed scrypt hash from the config, or the SHA-256 of a secret file's contents.

import { createHash } from 'node:crypto'
import type { BrokerConfig, CallerConfig } from '../config/config.ts'
import { ConfigError } from '../errors.ts'
import { ProtectedFileError, readProtectedFile, type ProtectedFileOptions } from '../keys/protected-file.ts'
import { minSecretLength, parseSecretHash, type ParsedSecretHash } from './secret-hash.ts'

/**
 * What a presented secret is checked against: an scrypt hash (verifySecretHash), or for a secret file
 * the SHA-256 of its UTF-8 text (compare SHA-256 of the presented secret with timingSafeEqual).
 */
export type CallerSecret =
  | { readonly kind: 'hash', readonly hash: ParsedSecretHash }
  | { readonly kind: 'plain', readonly sha256: Buffer }

/**
 * Loads the secret of every caller in `config.callers` (an empty map when there are none). Secret files
 * are subject to the same permission rule as key files; their text loses one trailing line break and
 * must hold at least 16 characters on one line.
 * @throws ConfigError listing every caller whose secret is unusable (`callers.epj.secretFile: ...`); never with secret material
 */
export async function loadCallerSecrets (config: BrokerConfig, options: ProtectedFileOptions & { readonly allowInsecurePermissions: boolean }): Promise<ReadonlyMap<string, CallerSecret>> {
  const callers = Object.values(config.callers ?? {})
  const loaded = await Promise.all(callers.map(async caller => await loadOne(caller, options)))
  const issues = loaded.filter(result => typeof result === 'string')
  if (issues.length > 0) throw new ConfigError(issues)
  return new Map(callers.map((caller, index) => [caller.name, loaded[index] as CallerSecret]))
}

async function loadOne (caller: CallerConfig, options: ProtectedFileOptions): Promise<CallerSecret | string> {
  if (caller.secret.kind === 'hash') {
    const hash = parseSecretHash(caller.secret.hash)
    return typeof hash === 'string' ? `callers.${caller.name}.secretHash: ${hash}` : { kind: 'hash', hash }
  }
  const path = `callers.${caller.name}.secretFile`
  const file = caller.secret.file
  let text: string
  try {
    text = await readProtectedFile(file, options)
  } catch (error) {
    if (error instanceof ProtectedFileError) return `${path}: ${error.message}`
    throw error
  }
  const secret = text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '')
  if (secret === '') return `${path}: ${file} is empty; put the secret in it (helseid-broker hash-secret --generate makes one)`
  if (/[\r\n]/.test(secret)) return `${path}: ${file} holds more than one line; it must hold only the secret`
  if (/[\u0000-\u001f\u007f]/.test(secret)) return `${path}: ${file} holds a control character; the secret must be printable text`
  if (secret.trim() !== secret) return `${path}: ${file} has spaces around the secret; remove them`
  if ([...secret].length < minSecretLength) return `${path}: the secret in ${file} is too short (under ${minSecretLength} characters); use helseid-broker hash-secret --generate for a strong one`
  return { kind: 'plain', sha256: createHash('sha256').update(secret, 'utf8').digest() }
}
