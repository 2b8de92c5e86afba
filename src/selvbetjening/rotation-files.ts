// The files of a key rotation: `<client file>.pending.json` (the new key until it is proven) and the client file rewritten with it.

import { readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { JWK } from 'jose'
import type { ClientKey } from '../keys/client-key.ts'
import { KeyFileError, parseClientKey } from '../keys/load-client-key.ts'
import { ProtectedFileError, readProtectedFile, type ProtectedFileOptions } from '../keys/protected-file.ts'
import { fileTimestamp, isErrnoException, syncDirectory, writeFileAtomic } from '../onboarding/atomic-write.ts'

/** `generated`: written before the registration, so a crash after a successful POST cannot lose the key; `registered`: Selvbetjening said 2xx. */
export type PendingKeyState = 'generated' | 'registered'

/** What the pending file holds (mode 0600, like the client file itself). */
export interface PendingKey {
  readonly state: PendingKeyState
  readonly clientId: string
  /** ISO 8601. */
  readonly createdAt: string
  /** The key this one replaces: the client file's key when the rotation began. */
  readonly replacesKid: string
  readonly replacesThumbprint: string
  /** The new private key with kid (its RFC 7638 thumbprint), alg and use. */
  readonly privateJwk: JWK
  /** ISO 8601; with state `registered`. */
  readonly registeredAt?: string
  /** The new key's expiry as Selvbetjening answered the registration; with state `registered`. */
  readonly expiration?: string
}

/** A pending file as found: absent, unreadable now (kept), invalid (discarded) or loaded. */
export type PendingKeyFile =
  | { readonly kind: 'absent' }
  | { readonly kind: 'unreadable', readonly reason: string }
  | { readonly kind: 'invalid', readonly reason: string }
  | { readonly kind: 'loaded', readonly pending: PendingKey, readonly key: ClientKey }

const formatVersion = 1

/** Where the pending key of a client file lives: next to it, so that the rename on promotion never crosses file systems. */
export function pendingKeyPath (clientFile: string): string {
  return `${clientFile}.pending.json`
}

/** Writes (or replaces) the pending file atomically: mode 0600, fsync'd, renamed into place, directory fsync'd. */
export async function savePendingKey (file: string, pending: PendingKey): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify({ version: formatVersion, ...pending }, null, 2)}\n`, { mode: 0o600 })
}

/** Reads the pending file; its key is parsed as the key of `clientFile` (where it is to live). */
export async function loadPendingKey (file: string, clientFile: string, options: ProtectedFileOptions = {}): Promise<PendingKeyFile> {
  let text: string
  try {
    text = await readProtectedFile(file, options)
  } catch (error) {
    if (error instanceof ProtectedFileError && !error.isPermissionProblem && /ENOENT$/.test(error.reason)) return { kind: 'absent' }
    return { kind: 'unreadable', reason: error instanceof Error ? error.message : String(error) }
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return { kind: 'invalid', reason: 'it is not valid JSON' }
  }
  const pending = toPendingKey(raw)
  if (typeof pending === 'string') return { kind: 'invalid', reason: pending }
  try {
    return { kind: 'loaded', pending, key: await parseClientKey(pending.privateJwk, clientFile) }
  } catch (error) {
    if (error instanceof KeyFileError) return { kind: 'invalid', reason: `its key is unusable: ${error.reason}` }
    throw error
  }
}

/** Moves the pending file aside as `<pending>.discarded-<UTC time>` (kept for forensics). @returns the new name */
export async function discardPendingKey (file: string, date: Date): Promise<string> {
  const base = `${file}.discarded-${fileTimestamp(date)}`
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}.${n}`
    if (await stat(candidate).then(() => true, () => false)) continue
    await rename(file, candidate)
    await syncDirectory(dirname(file))
    return candidate
  }
}

/** Deletes the pending file once its key is the client file's; a missing file is fine. */
export async function removePendingKey (file: string): Promise<void> {
  try {
    await unlink(file)
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return
    throw error
  }
  await syncDirectory(dirname(file))
}

/**
 * The client file as it is to be with `privateJwk` in it, in the shape it had: a Selvbetjening download keeps every member
 * and gets `privateJwk` as a JSON string (with kid and alg), `rsaPrivateKey` (.NET XML) and `rsaKeySizeBits` to match;
 * a JWK set gets the one key; a plain JWK file becomes the new JWK.
 */
export function renderClientFile (currentText: string, privateJwk: JWK): string {
  const current: unknown = JSON.parse(currentText.replace(/^\uFEFF/, ''))
  if (typeof current !== 'object' || current === null || Array.isArray(current)) throw new TypeError('the client file is not a JSON object')
  const record = current as Record<string, unknown>
  let next: unknown = privateJwk
  if ('privateJwk' in record) {
    next = {
      ...record,
      privateJwk: JSON.stringify(privateJwk),
      ...('rsaPrivateKey' in record ? { rsaPrivateKey: rsaKeyValueXml(privateJwk) } : {}),
      ...('rsaKeySizeBits' in record ? { rsaKeySizeBits: Buffer.from(String(privateJwk.n), 'base64url').length * 8 } : {})
    }
  } else if (Array.isArray(record.keys)) {
    next = { ...record, keys: [privateJwk] }
  }
  return `${JSON.stringify(next, null, 2)}\n`
}

/** Reads the client file as it is now (its permissions were checked when the broker loaded it). */
export async function readClientFile (file: string): Promise<string> {
  return await readFile(file, 'utf8')
}

// The .NET form Selvbetjening puts next to privateJwk (helseid-protocol.md §1.2), standard base64.
function rsaKeyValueXml (jwk: JWK): string {
  const b64 = (value: string | undefined): string => Buffer.from(value ?? '', 'base64url').toString('base64')
  const parts: ReadonlyArray<readonly [string, string | undefined]> = [
    ['Modulus', jwk.n], ['Exponent', jwk.e], ['P', jwk.p], ['Q', jwk.q], ['DP', jwk.dp], ['DQ', jwk.dq], ['InverseQ', jwk.qi], ['D', jwk.d]
  ]
  return `<RSAKeyValue>${parts.map(([name, value]) => `<${name}>${b64(value)}</${name}>`).join('')}</RSAKeyValue>`
}

function toPendingKey (raw: unknown): PendingKey | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'it is not a JSON object'
  const value = raw as Record<string, unknown>
  if (value.version !== formatVersion) return `it has version ${JSON.stringify(value.version)}, expected ${formatVersion}`
  if (value.state !== 'generated' && value.state !== 'registered') return `it has state ${JSON.stringify(value.state)}`
  for (const member of ['clientId', 'createdAt', 'replacesKid', 'replacesThumbprint'] as const) {
    if (typeof value[member] !== 'string' || value[member] === '') return `it has no ${member}`
  }
  const privateJwk = value.privateJwk
  if (typeof privateJwk !== 'object' || privateJwk === null || Array.isArray(privateJwk)) return 'it has no privateJwk'
  const optional = (member: 'registeredAt' | 'expiration'): { readonly [name: string]: string } => typeof value[member] === 'string' ? { [member]: value[member] } : {}
  return {
    state: value.state,
    clientId: String(value.clientId),
    createdAt: String(value.createdAt),
    replacesKid: String(value.replacesKid),
    replacesThumbprint: String(value.replacesThumbprint),
    privateJwk: privateJwk as JWK,
    ...optional('registeredAt'),
    ...optional('expiration')
  }
}
