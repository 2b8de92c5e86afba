// Files holding secret material (client keys, caller secrets): on POSIX, refused when group or others have any access, as ssh does.

import { open } from 'node:fs/promises'

/** How to read a protected file. */
export interface ProtectedFileOptions {
  /** Accept files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions?: boolean
  /** For tests; default process.platform. On win32 no check is made (ACLs are the admin's job; see the README). */
  readonly platform?: NodeJS.Platform
}

/** The command-line flag that accepts files with open permissions. */
export const insecurePermissionsFlag = '--allow-insecure-key-permissions'

/**
 * A protected file that could not be read (`FILE: cannot read the file: ENOENT`) or is open to group or
 * others (`FILE is readable by group or others ...`); never holds the file's contents.
 */
export class ProtectedFileError extends Error {
  readonly file: string
  /** What is wrong, without the leading file name. */
  readonly reason: string
  /** True when the file could be read but its permissions are too open. */
  readonly isPermissionProblem: boolean
  constructor (file: string, reason: string, isPermissionProblem: boolean) {
    super(isPermissionProblem ? `${file} ${reason}` : `${file}: ${reason}`)
    this.name = 'ProtectedFileError'
    this.file = file
    this.reason = reason
    this.isPermissionProblem = isPermissionProblem
  }
}

/**
 * Why `mode` is too open for a file holding secrets (any group or other bit, mode & 0o077), or undefined.
 * The text starts after the file name: `is readable by group or others (mode 0644); run: chmod 600 FILE — or start with --allow-insecure-key-permissions`.
 */
export function insecurePermissions (file: string, mode: number, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'win32' || (mode & 0o077) === 0) return undefined
  const what = (mode & 0o044) !== 0 ? 'readable' : (mode & 0o022) !== 0 ? 'writable' : 'accessible'
  const octal = (mode & 0o7777).toString(8).padStart(4, '0')
  return `is ${what} by group or others (mode ${octal}); run: chmod 600 ${file} — or start with ${insecurePermissionsFlag}`
}

/**
 * Reads a UTF-8 file that holds secret material; the mode is checked on the open handle, so the file read is the file checked.
 * @throws ProtectedFileError when it cannot be read (`FILE: cannot read the file: ENOENT`) or its permissions are too open (`FILE is readable by ...`)
 */
export async function readProtectedFile (file: string, options: ProtectedFileOptions = {}): Promise<string> {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    throw new ProtectedFileError(file, `cannot read the file: ${errorCode(error)}`, false)
  }
  try {
    const stats = await handle.stat()
    if (stats.isDirectory()) throw new ProtectedFileError(file, 'cannot read the file: EISDIR', false)
    const problem = options.allowInsecurePermissions === true ? undefined : insecurePermissions(file, stats.mode, options.platform)
    if (problem !== undefined) throw new ProtectedFileError(file, problem, true)
    return await handle.readFile('utf8')
  } catch (error) {
    if (error instanceof ProtectedFileError) throw error
    throw new ProtectedFileError(file, `cannot read the file: ${errorCode(error)}`, false)
  } finally {
    await handle.close()
  }
}

function errorCode (error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code
  return error instanceof Error ? error.name : typeof error
}
