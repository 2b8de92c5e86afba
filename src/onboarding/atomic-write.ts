// Crash-safe file replacement: temp file in the same directory, fsync, rename over the target, fsync the directory.

import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** How writeFileAtomic creates the new file. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file (default 0o600, owner only); applied with chmod, so the umask does not narrow or widen them. */
  readonly mode?: number
  /** Give the new file this owner (e.g. the replaced file's); only tried when running as root on POSIX, failures ignored. */
  readonly owner?: { readonly uid: number, readonly gid: number }
  /** For tests; default process.platform. On win32 the mode is mostly ignored by the OS and directories cannot be fsync'd. */
  readonly platform?: NodeJS.Platform
}

/**
 * Replaces `file` with `data` so that a reader (or a crash) sees either the old or the new contents, never a mix:
 * writes `.<name>.<random>.tmp` next to it (created exclusively, mode `options.mode`), fsyncs it, renames it over
 * `file` and fsyncs the directory. On any error the temp file is removed and `file` is untouched.
 * The directory must exist. A symbolic link at `file` is replaced by a regular file; pass its realpath to write through it.
 * @throws the underlying fs error (EACCES, ENOSPC, ...) after cleaning up
 */
export async function writeFileAtomic (file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600
  const platform = options.platform ?? process.platform
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temp, 'wx', mode)
  let isRenamed = false
  try {
    try {
      await handle.chmod(mode)
      if (options.owner !== undefined && isRoot(platform)) await handle.chown(options.owner.uid, options.owner.gid).catch(() => {})
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
    isRenamed = true
    await syncDirectory(dirname(file), platform)
  } finally {
    if (!isRenamed) await unlink(temp).catch(() => {})
  }
}

/**
 * Creates `dir` (and missing parents) with mode 0o700 when it does not exist; an existing directory is left as it is.
 * @returns true when the directory was created
 */
export async function ensurePrivateDirectory (dir: string, platform: NodeJS.Platform = process.platform): Promise<boolean> {
  const existing = await stat(dir).catch((error: unknown) => {
    if (isErrnoException(error) && error.code === 'ENOENT') return undefined
    throw error
  })
  if (existing !== undefined) {
    if (!existing.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: 'ENOTDIR' })
    return false
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  await syncDirectory(dirname(dir), platform)
  return true
}

/**
 * Keeps `data` (the contents of `file` about to be replaced) as `<file>.<UTC timestamp>.bak` (`.bak.2`, ... when that
 * name is taken), written atomically with mode 0o600 unless `options.mode` says otherwise.
 * @returns the backup's path
 */
export async function writeBackup (file: string, data: string | Uint8Array, date: Date, options: AtomicWriteOptions = {}): Promise<string> {
  const base = `${file}.${fileTimestamp(date)}.bak`
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? base : `${base}.${n}`
    const isTaken = await stat(candidate).then(() => true, () => false)
    if (isTaken) continue
    await writeFileAtomic(candidate, data, options)
    return candidate
  }
}

/** A UTC timestamp usable in file names on every OS: `20250102T030405Z`. */
export function fileTimestamp (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

/** fsync a directory so that a rename in it survives a crash; not possible on Windows, where it is skipped. */
export async function syncDirectory (dir: string, platform: NodeJS.Platform = process.platform): Promise<void> {
  if (platform === 'win32') return
  let handle
  try {
    handle = await open(dir, 'r')
  } catch (error) {
    if (isErrnoException(error) && (error.code === 'EISDIR' || error.code === 'EPERM' || error.code === 'EACCES')) return
    throw error
  }
  try {
    await handle.sync().catch((error: unknown) => {
      // Some file systems (and Docker overlay setups) refuse fsync on directories; the rename has happened anyway.
      if (!(isErrnoException(error) && (error.code === 'EINVAL' || error.code === 'EBADF' || error.code === 'ENOTSUP'))) throw error
    })
  } finally {
    await handle.close()
  }
}

function isRoot (platform: NodeJS.Platform): boolean {
  return platform !== 'win32' && typeof process.getuid === 'function' && process.getuid() === 0
}

/** True for Node's fs errors, which carry a string `code`. */
export function isErrnoException (error: unknown): error is NodeJS.ErrnoException & { code: string } {
  return error instanceof Error && 'code' in error && typeof error.code === 'string'
}
