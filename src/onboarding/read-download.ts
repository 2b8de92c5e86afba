// Reads a HelseID Selvbetjening download as delivered: the password-protected zip (WinZip AES or ZipCrypto) or the extracted JSON.

import { readFile, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import {
  ERR_INVALID_AUTHENTICATION_CODE, ERR_INVALID_COMPRESSED_DATA, ERR_INVALID_CRC32, ERR_INVALID_PASSWORD, ERR_INVALID_UNCOMPRESSED_SIZE,
  ERR_ENCRYPTED_CENTRAL_DIRECTORY, ERR_SPLIT_ZIP_FILE, ERR_UNSUPPORTED_COMPRESSION, ERR_UNSUPPORTED_ENCRYPTION,
  Uint8ArrayReader, Uint8ArrayWriter, ZipReader, type Entry, type FileEntry
} from '@zip.js/zip.js'

/** Why a download could not be read; `password-needed` is the only one the user fixes on the command line. */
export type DownloadProblem = 'unreadable' | 'not-a-download' | 'not-zip' | 'unsupported-zip' | 'wrong-password' | 'password-needed' | 'no-client-file'

/** A download that cannot be imported; the message names the file and never holds key material or the password. */
export class DownloadError extends Error {
  readonly problem: DownloadProblem
  constructor (problem: DownloadProblem, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'DownloadError'
    this.problem = problem
  }
}

/** How the client file was packed. */
export type DownloadEncryption = 'none' | 'AES-128' | 'AES-192' | 'AES-256' | 'ZipCrypto'

/** The client file found in a download. */
export interface ClientDownload {
  /** Absolute path of the file that was given. */
  readonly source: string
  /** The client file's name inside the zip; undefined when `source` is the JSON itself. */
  readonly entryName?: string
  readonly encryption: DownloadEncryption
  /** The client file exactly as delivered (byte for byte, BOM included), to be stored as it is. */
  readonly bytes: Uint8Array
  /** The client file parsed: a JSON object (not yet checked for a usable key). */
  readonly json: Readonly<Record<string, unknown>>
  /** Other client files in the zip, which were not used (the first one wins). */
  readonly otherClientFiles: readonly string[]
}

/**
 * Supplies the zip password, asked lazily (only for an encrypted zip): `attempt` 1 first, then 2, 3, ... after a
 * wrong one; undefined means there is no (further) password: at attempt 1 a `password-needed` error, later `wrong-password`.
 */
export type PasswordSource = (attempt: number) => Promise<string | undefined>

/** The largest download read (a real one is about 10 KiB). */
export const maxDownloadBytes = 8 * 1024 * 1024
/** The largest zip entry looked at as a possible client file. */
export const maxClientFileBytes = 1024 * 1024

const zipMagic = [0x50, 0x4b] // "PK": local file header, or end of central directory of an empty zip

/**
 * Reads `file`: a zip (its first `*.json` entry holding clientId and privateJwk; encrypted entries are decrypted with
 * the password from `password`) or a JSON file, returned as it is after checking that it is a JSON object.
 * @throws DownloadError for every unusable input (the command reports these as configuration errors)
 */
export async function readDownload (file: string, password: PasswordSource): Promise<ClientDownload> {
  const source = resolve(file)
  const bytes = await readInput(source)
  const looksLikeZip = zipMagic.every((byte, index) => bytes[index] === byte)
  if (looksLikeZip || /\.zip$/i.test(source)) return await readZip(source, bytes, password)
  const parsed = parseClientFile(bytes, { requireClientFields: false })
  if ('reason' in parsed) {
    throw new DownloadError('not-a-download', `${source}: ${parsed.reason}; expected the zip downloaded from HelseID Selvbetjening or the JSON file extracted from it`)
  }
  return { source, encryption: 'none', bytes, json: parsed.json, otherClientFiles: [] }
}

async function readInput (source: string): Promise<Uint8Array> {
  try {
    const stats = await stat(source)
    if (stats.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' })
    if (stats.size > maxDownloadBytes) {
      throw new DownloadError('not-a-download', `${source}: ${stats.size} bytes is far too large for a Selvbetjening download (at most ${maxDownloadBytes})`)
    }
    return new Uint8Array(await readFile(source))
  } catch (error) {
    if (error instanceof DownloadError) throw error
    throw new DownloadError('unreadable', `${source}: cannot read the file: ${errorCode(error)}`)
  }
}

async function readZip (source: string, bytes: Uint8Array, password: PasswordSource): Promise<ClientDownload> {
  const reader = new ZipReader(new Uint8ArrayReader(bytes), { useWebWorkers: false })
  try {
    let entries: Entry[]
    try {
      entries = await reader.getEntries()
    } catch (error) {
      if (isZipError(error, ERR_ENCRYPTED_CENTRAL_DIRECTORY, ERR_SPLIT_ZIP_FILE)) throw unsupported(source, error)
      throw new DownloadError('not-zip', `${source}: not a valid zip file (${zipMessage(error)}); it may be damaged or incomplete: download it again from Selvbetjening`, { cause: error })
    }
    const files = entries.filter((entry): entry is FileEntry => !entry.directory)
    const candidates = files.filter(entry => /\.json$/i.test(entry.filename) && !entry.filename.startsWith('__MACOSX/'))
    const passwords = createPasswordCache(source, password)
    const skipped: string[] = []
    const found: Array<{ entry: FileEntry, bytes: Uint8Array, json: Readonly<Record<string, unknown>> }> = []
    for (const entry of candidates) {
      if (entry.uncompressedSize > maxClientFileBytes) { skipped.push(`${entry.filename} (too large)`); continue }
      const content = await extract(source, entry, passwords)
      const parsed = parseClientFile(content, { requireClientFields: true })
      if ('reason' in parsed) { skipped.push(`${entry.filename} (${parsed.reason})`); continue }
      found.push({ entry, bytes: content, json: parsed.json })
    }
    const [first, ...others] = found
    if (first === undefined) {
      const names = files.map(entry => skipped.find(line => line.startsWith(`${entry.filename} (`)) ?? entry.filename)
      throw new DownloadError('no-client-file', `${source}: the zip holds no HelseID client file (a JSON file with clientId and privateJwk); ${names.length === 0 ? 'it is empty' : `its files: ${names.join(', ')}`}`)
    }
    return {
      source,
      entryName: first.entry.filename,
      encryption: encryptionOf(first.entry),
      bytes: first.bytes,
      json: first.json,
      otherClientFiles: others.map(other => other.entry.filename)
    }
  } finally {
    await reader.close().catch(() => {})
  }
}

interface PasswordCache {
  /** The password that worked last, or the first one asked for. */
  readonly current: () => Promise<string>
  /** The current password was wrong (`isCertain` false: or the entry is damaged): ask for the next; throws wrong-password when there is none. */
  readonly next: (isCertain: boolean) => Promise<string>
}

function createPasswordCache (source: string, password: PasswordSource): PasswordCache {
  let attempt = 0
  let value: string | undefined
  const ask = async (isCertain: boolean): Promise<string> => {
    attempt += 1
    value = await password(attempt)
    if (value !== undefined) return value
    if (attempt === 1) throw new DownloadError('password-needed', `${source}: the zip is encrypted and no password was given`)
    const orDamaged = isCertain ? '' : ' (or the zip is damaged: then download it again)'
    throw new DownloadError('wrong-password', `${source}: wrong zip password${orDamaged}; it is the one sent by SMS when the client configuration was downloaded`)
  }
  return {
    current: async () => value ?? await ask(true),
    next: ask
  }
}

async function extract (source: string, entry: FileEntry, passwords: PasswordCache): Promise<Uint8Array> {
  const options = { checkCrc32: true, useWebWorkers: false }
  if (!entry.encrypted) {
    try {
      return await entry.getData(new Uint8ArrayWriter(), options)
    } catch (error) {
      throw damaged(source, entry, error)
    }
  }
  let isCertain = true
  for (let password = await passwords.current(); ; password = await passwords.next(isCertain)) {
    isCertain = true
    // A password copied from the SMS often comes with a space before or after it.
    for (const candidate of password.trim() === password ? [password] : [password, password.trim()]) {
      try {
        return await entry.getData(new Uint8ArrayWriter(), { ...options, password: candidate })
      } catch (error) {
        const verdict = passwordVerdict(error)
        if (verdict === undefined) throw damaged(source, entry, error)
        if (verdict === 'maybe') isCertain = false
      }
    }
  }
}

// ZipCrypto checks a password against one byte only (and AES against two), so a wrong password can pass that check and fail
// later, in decompression, the CRC or the AES authentication code. For an encrypted entry these mean: wrong password (or damage).
function passwordVerdict (error: unknown): 'wrong' | 'maybe' | undefined {
  if (isZipError(error, ERR_INVALID_PASSWORD)) return 'wrong'
  if (isZipError(error, ERR_INVALID_COMPRESSED_DATA, ERR_INVALID_CRC32, ERR_INVALID_UNCOMPRESSED_SIZE, ERR_INVALID_AUTHENTICATION_CODE)) return 'maybe'
  return undefined
}

function damaged (source: string, entry: FileEntry, error: unknown): DownloadError {
  if (isZipError(error, ERR_UNSUPPORTED_ENCRYPTION, ERR_UNSUPPORTED_COMPRESSION)) return unsupported(source, error)
  return new DownloadError('not-zip', `${source}: not a valid zip file: ${entry.filename} cannot be extracted (${zipMessage(error)}); download it again from Selvbetjening`, { cause: error })
}

function unsupported (source: string, error: unknown): DownloadError {
  return new DownloadError('unsupported-zip', `${source}: the zip uses a format the broker cannot read (${zipMessage(error)}); extract the JSON file with 7-Zip and import that file instead`, { cause: error })
}

function encryptionOf (entry: FileEntry): DownloadEncryption {
  if (!entry.encrypted) return 'none'
  if (entry.zipCrypto) return 'ZipCrypto'
  const strength = entry.extraFieldAES?.strength
  return strength === 1 ? 'AES-128' : strength === 2 ? 'AES-192' : 'AES-256'
}

/** Decodes and parses a would-be client file; `requireClientFields` also demands clientId and privateJwk. */
function parseClientFile (bytes: Uint8Array, options: { readonly requireClientFields: boolean }): { json: Readonly<Record<string, unknown>> } | { reason: string } {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    return { reason: 'not UTF-8 text' }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // JSON.parse messages quote the text around the error, which may be key material.
    return { reason: 'not valid JSON' }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { reason: 'not a JSON object' }
  const record = json as Readonly<Record<string, unknown>>
  if (options.requireClientFields) {
    const missing = ['clientId', 'privateJwk'].filter(key => !(key in record))
    if (missing.length > 0) return { reason: `no ${missing.join(' or ')}` }
  }
  return { json: record }
}

function isZipError (error: unknown, ...messages: readonly string[]): boolean {
  return error instanceof Error && messages.some(message => error.message === message)
}

function zipMessage (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function errorCode (error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code
  return error instanceof Error ? error.message : String(error)
}
