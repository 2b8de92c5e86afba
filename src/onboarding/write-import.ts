// Writes an import: the client file into the key store (0600, atomic, old file kept as .bak) and then the config; all or nothing.

import { readFile, realpath, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { KeyFileError } from '../keys/load-client-key.ts'
import { ensurePrivateDirectory, isErrnoException, writeBackup, writeFileAtomic } from './atomic-write.ts'
import type { ClientDownload } from './read-download.ts'
import type { ConfigUpdate } from './update-config.ts'

/** What writeImport writes: the download's bytes to `target`, then `update.text` over the config (unless unchanged). */
export interface WriteRequest {
  readonly configPath: string
  readonly configText: string
  readonly update: ConfigUpdate
  readonly target: string
  readonly download: ClientDownload
  readonly clientId: string
  readonly force: boolean
  readonly now: () => Date
}

/** What writeImport did. */
export interface WriteResult {
  readonly keyFile: 'written' | 'replaced' | 'unchanged'
  readonly backup?: string
  readonly isDirectoryCreated: boolean
}

/** import will not go on (an unreadable config, a key file of another client without --force): exit 78; the message says why and that nothing was written. */
export class ImportRefusedError extends Error {}

/**
 * Writes the key file (replacing a file of another client only with `force`, keeping any replaced file as a .bak),
 * then the config (after checking that nobody changed it meanwhile, keeping its mode and owner). When the config
 * cannot be written, the key store is put back as it was.
 * @throws ImportRefusedError (another client's key file, no --force), KeyFileError (an unreadable key file), WriteFailure (rolled back)
 */
export async function writeImport (request: WriteRequest): Promise<WriteResult> {
  const { target, download } = request
  const previous = await readExisting(target)
  const isUnchanged = previous !== undefined && Buffer.from(previous.bytes).equals(Buffer.from(download.bytes))
  if (previous !== undefined && !isUnchanged && previous.clientId !== request.clientId && !request.force) {
    const holds = previous.clientId === undefined ? 'holds no client id this import can read' : `holds client ${previous.clientId}`
    throw new ImportRefusedError(`${target} ${holds}, not ${request.clientId}; nothing was written. To replace it, run again with --force (the old file is kept as ${target}.<UTC time>.bak)`)
  }
  const configRealPath = await realpath(request.configPath)
  const configStats = await stat(configRealPath)
  const keysDir = dirname(target)
  let isDirectoryCreated = false
  let isKeyWritten = false
  let backup: string | undefined
  try {
    isDirectoryCreated = await ensurePrivateDirectory(keysDir)
    const dirStats = await stat(keysDir)
    const owner = previous?.owner ?? { uid: dirStats.uid, gid: dirStats.gid }
    if (!isUnchanged) {
      if (previous !== undefined) backup = await writeBackup(target, previous.bytes, request.now(), { mode: 0o600, owner })
      await writeFileAtomic(previous?.realPath ?? target, download.bytes, { mode: 0o600, owner })
      isKeyWritten = true
    }
    if (request.update.method !== 'unchanged') {
      if (await readFile(configRealPath, 'utf8') !== request.configText) throw new Error(`${request.configPath} was changed by someone else during the import; run the import again`)
      await writeFileAtomic(configRealPath, request.update.text, { mode: configStats.mode & 0o7777, owner: { uid: configStats.uid, gid: configStats.gid } })
    }
  } catch (error) {
    await rollBack({ target: previous?.realPath ?? target, previous: previous?.bytes, isKeyWritten, backup, keysDir, isDirectoryCreated })
    throw new WriteFailure(error)
  }
  return { keyFile: isUnchanged ? 'unchanged' : previous === undefined ? 'written' : 'replaced', ...(backup === undefined ? {} : { backup }), isDirectoryCreated }
}

interface ExistingKeyFile {
  readonly bytes: Uint8Array
  readonly clientId?: string
  readonly realPath: string
  readonly owner: { readonly uid: number, readonly gid: number }
}

async function readExisting (target: string): Promise<ExistingKeyFile | undefined> {
  let bytes: Uint8Array
  let realPath: string
  try {
    realPath = await realpath(target)
    bytes = new Uint8Array(await readFile(realPath))
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return undefined
    throw new KeyFileError(target, `exists but cannot be read (${isErrnoException(error) ? error.code : String(error)}); nothing was written`)
  }
  const stats = await stat(realPath)
  let clientId: string | undefined
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(bytes))
    if (typeof json === 'object' && json !== null && 'clientId' in json && typeof json.clientId === 'string') clientId = json.clientId.trim()
  } catch { /* not JSON: no client id */ }
  return { bytes, realPath, owner: { uid: stats.uid, gid: stats.gid }, ...(clientId === undefined ? {} : { clientId }) }
}

// Puts the key store back as it was when the config could not be written.
async function rollBack (state: { target: string, previous: Uint8Array | undefined, isKeyWritten: boolean, backup: string | undefined, keysDir: string, isDirectoryCreated: boolean }): Promise<void> {
  if (state.isKeyWritten) {
    if (state.previous === undefined) await unlink(state.target).catch(() => {})
    else await writeFileAtomic(state.target, state.previous, { mode: 0o600 }).catch(() => {})
  }
  if (state.backup !== undefined) await unlink(state.backup).catch(() => {})
  if (state.isDirectoryCreated) await rmdir(state.keysDir).catch(() => {})
}

/** Writing the key file or the config failed; everything was rolled back. */
export class WriteFailure extends Error {
  constructor (cause: unknown) {
    super(isErrnoException(cause) ? `${cause.code}${cause.path === undefined ? '' : ` on ${cause.path}`}` : cause instanceof Error ? cause.message : String(cause), { cause })
  }
}
