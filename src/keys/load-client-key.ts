// Loads a tenant's client key from a Selvbetjening download (extracted JSON), a private JWK or a one-key JWK set.

import { resolve } from 'node:path'
import { calculateJwkThumbprint, compactVerify, CompactSign, importJWK, type JWK } from 'jose'
import type { ClientKey } from './client-key.ts'
import { checkPrivateJwk, type CheckedJwk } from './private-jwk.ts'
import { ProtectedFileError, readProtectedFile, type ProtectedFileOptions } from './protected-file.ts'

/** A key file that cannot be used; the message names the file and the reason, never key material. */
export class KeyFileError extends Error {
  /** Absolute path of the file. */
  readonly file: string
  /** Why the file is unusable, without the file name. */
  readonly reason: string
  constructor (file: string, reason: string, options?: ErrorOptions) {
    super(`${file}: ${reason}`, options)
    this.name = 'KeyFileError'
    this.file = file
    this.reason = reason
  }
}

/** A key file that group or others may access (POSIX); its message reads `FILE is readable by group or others (mode 0644); run: chmod 600 FILE — ...`. */
export class InsecureKeyFileError extends KeyFileError {
  constructor (file: string, reason: string) {
    super(file, reason)
    this.name = 'InsecureKeyFileError'
    this.message = `${file} ${reason}`
  }
}

const expectedShapes = 'expected a Selvbetjening download (extracted JSON with clientId, authority, privateJwk), a private JWK (kty, ...) or a JWK set with one private key ({"keys": [...]})'

/**
 * Reads and checks a client key file; a relative `file` resolves against the working directory.
 * On POSIX a file that group or others may access is refused unless `options.allowInsecurePermissions`.
 * @throws KeyFileError when the file cannot be read or holds no usable private key (InsecureKeyFileError for open permissions)
 */
export async function loadClientKey (file: string, options: ProtectedFileOptions = {}): Promise<ClientKey> {
  const path = resolve(file)
  let text: string
  try {
    text = await readProtectedFile(path, options)
  } catch (error) {
    if (!(error instanceof ProtectedFileError)) throw error
    throw error.isPermissionProblem ? new InsecureKeyFileError(path, error.reason) : new KeyFileError(path, error.reason)
  }
  if (text.startsWith('PK\u0003\u0004')) throw new KeyFileError(path, 'is a zip file; extract the JSON file from the Selvbetjening download first (or use helseid-broker import)')
  if (text.trimStart().startsWith('-----BEGIN')) throw new KeyFileError(path, `is a PEM file; PEM keys are not supported, ${expectedShapes}`)
  let raw: unknown
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''))
  } catch {
    // JSON.parse messages quote the text around the error, which may be key material.
    throw new KeyFileError(path, `is not valid JSON; ${expectedShapes}`)
  }
  return parseClientKey(raw, path)
}

/**
 * Checks parsed key file contents and imports the private key (non-extractable); `file` is recorded on the result.
 * @throws KeyFileError when the contents hold no usable private key
 */
export async function parseClientKey (raw: unknown, file: string): Promise<ClientKey> {
  const fail = (reason: string): never => { throw new KeyFileError(file, reason) }
  if (!isRecord(raw)) return fail(`holds ${Array.isArray(raw) ? 'a list' : typeof raw}; ${expectedShapes}`)
  const { jwk, clientId, authority } = identify(raw, fail)
  const checked = checkPrivateJwk(jwk)
  if (typeof checked === 'string') return fail(`${clientId === undefined ? '' : 'privateJwk '}${checked}`)
  const thumbprint = await calculateJwkThumbprint(checked.publicJwk, 'sha256')
  const kid = checked.kid ?? thumbprint
  const publicJwk: JWK = { ...checked.publicJwk, kid, alg: checked.alg, use: 'sig' }
  const privateKey = await importKeyPair(checked, publicJwk, fail)
  return {
    file,
    ...(clientId === undefined ? {} : { clientId }),
    ...(authority === undefined ? {} : { authority }),
    kid,
    alg: checked.alg,
    kty: checked.kty,
    sizeBits: checked.sizeBits,
    ...(checked.crv === undefined ? {} : { crv: checked.crv }),
    privateKey,
    publicJwk,
    thumbprint
  }
}

interface KeySource {
  readonly jwk: Readonly<Record<string, unknown>>
  readonly clientId?: string
  readonly authority?: string
}

function identify (raw: Readonly<Record<string, unknown>>, fail: (reason: string) => never): KeySource {
  if ('privateJwk' in raw) return fromDownload(raw, fail)
  if ('kty' in raw) return { jwk: raw }
  if (Array.isArray(raw.keys)) {
    const [only, ...rest] = raw.keys as unknown[]
    if (only === undefined || rest.length > 0) return fail(`is a JWK set with ${raw.keys.length} keys; expected exactly one private key`)
    if (!isRecord(only)) return fail('is a JWK set whose key is not a JSON object')
    return { jwk: only }
  }
  const found = Object.keys(raw).slice(0, 8).join(', ')
  return fail(`is JSON but not a key file (${found === '' ? 'an empty object' : `found ${found}`}); ${expectedShapes}`)
}

// helseid-protocol.md §1.2/§1.3: privateJwk is a JWK serialised to a string (FHI URL-decodes it first).
function fromDownload (raw: Readonly<Record<string, unknown>>, fail: (reason: string) => never): KeySource {
  const clientId = raw.clientId
  if (typeof clientId !== 'string' || clientId.trim() === '') return fail('is a Selvbetjening download without a clientId')
  if (typeof raw.authority !== 'string') return fail('is a Selvbetjening download without an authority')
  const authority = normaliseAuthority(raw.authority) ?? fail(`is a Selvbetjening download whose authority is not an http(s) URL: ${JSON.stringify(raw.authority)}`)
  if (Array.isArray(raw.grantTypes) && !raw.grantTypes.includes('client_credentials')) {
    return fail(`is a download for a client without the client_credentials grant (grantTypes: ${raw.grantTypes.map(String).join(', ')}); the broker needs a machine-to-machine client`)
  }
  const privateJwk = raw.privateJwk
  const jwk = typeof privateJwk === 'string' ? parseJwkString(privateJwk) : privateJwk
  if (!isRecord(jwk)) return fail('is a Selvbetjening download whose privateJwk is not a JSON object or valid JSON text')
  return { jwk, clientId: clientId.trim(), authority }
}

function parseJwkString (text: string): unknown {
  for (const candidate of [text, text.includes('%') ? safeDecode(text) : undefined]) {
    if (candidate === undefined) continue
    try { return JSON.parse(candidate) } catch { /* try the URL-decoded form next */ }
  }
  return undefined
}

function safeDecode (text: string): string | undefined {
  try { return decodeURIComponent(text) } catch { return undefined }
}

/** Strips a trailing `/` and `/connect/token` from an authority; undefined unless it is an http(s) URL. */
export function normaliseAuthority (authority: string): string | undefined {
  const stripped = authority.trim().replace(/\/+$/, '').replace(/\/connect\/token$/i, '').replace(/\/+$/, '')
  try {
    const url = new URL(stripped)
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
    return url.href.replace(/\/+$/, '')
  } catch {
    return undefined
  }
}

// A sign/verify round trip catches private members that do not belong to the public ones (hand-edited files).
async function importKeyPair (checked: CheckedJwk, publicJwk: JWK, fail: (reason: string) => never): Promise<CryptoKey> {
  let privateKey: CryptoKey
  let publicKey: CryptoKey
  try {
    privateKey = await importJWK(checked.privateJwk, checked.alg, { extractable: false }) as CryptoKey
    publicKey = await importJWK(publicJwk, checked.alg) as CryptoKey
  } catch (error) {
    return fail(`holds a malformed ${checked.kty} key that could not be imported (${errorName(error)})`)
  }
  try {
    const probe = await new CompactSign(new TextEncoder().encode('helseid-broker key check')).setProtectedHeader({ alg: checked.alg }).sign(privateKey)
    await compactVerify(probe, publicKey)
  } catch (error) {
    return fail(`holds a private key that does not match its public members, or cannot sign with ${checked.alg} (${errorName(error)})`)
  }
  return privateKey
}

function isRecord (value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function errorName (error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code
  return error instanceof Error ? error.name : typeof error
}
