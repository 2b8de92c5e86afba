// `keys status`: per tenant the client key (id, algorithm, size, file) and its expiry from the Selvbetjening API.

import type { CliIo } from '../cli.ts'
import { loadConfigFiles, withDependencies } from './load-files.ts'
import { exitCodes } from '../errors.ts'
import type { KeyExpiry } from '../selvbetjening/key-expiry.ts'

export interface KeysStatusCommand {
  readonly configPath: string
  /** Accept key and secret files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions?: boolean
}

/** Prints the table; exit 0, or 1 when a key's expiry could not be read or a key has expired. */
export async function runKeysStatus (command: KeysStatusCommand, io: CliIo): Promise<number> {
  const files = await loadConfigFiles(command.configPath, { allowInsecurePermissions: command.allowInsecurePermissions === true })
  return await withDependencies(files, {}, async deps => {
    const expiries = await deps.keyExpiry.checkNow()
    const rows = [...deps.tenants.values()].map(tenant => {
      const { key } = tenant.credentials
      const expiry = deps.keyExpiry.forTenant(tenant.name)
      return [
        tenant.name,
        tenant.credentials.clientId,
        key.kid,
        key.alg,
        String(key.sizeBits),
        key.file,
        expiry === undefined || expiry.expiresAtMs === null ? '-' : new Date(expiry.expiresAtMs).toISOString().replace(/\.000Z$/, 'Z'),
        expiry === undefined || expiry.daysLeft === null ? '-' : String(expiry.daysLeft),
        stateOf(expiry)
      ]
    })
    io.out(`Key expiry from ${deps.selvbetjening.baseUrl} (warn below ${files.config.keys.warnDays} days)`)
    io.out(formatTable(['TENANT', 'CLIENT ID', 'KEY ID', 'ALG', 'BITS', 'FILE', 'EXPIRES', 'DAYS LEFT', 'STATE'], rows))
    for (const expiry of expiries) {
      if (expiry.lastError !== null) io.err(`${expiry.tenants.join(', ')}: could not read the key's expiry: ${expiry.lastError}`)
      else if (expiry.isExpired) io.err(`${expiry.tenants.join(', ')}: key ${expiry.kid} has expired; HelseID no longer accepts it`)
      else if (expiry.isExpiringSoon) io.err(`${expiry.tenants.join(', ')}: key ${expiry.kid} expires in ${String(expiry.daysLeft)} days; rotate it`)
    }
    const isOk = expiries.every(expiry => expiry.lastError === null && !expiry.isExpired)
    return isOk ? exitCodes.ok : exitCodes.failure
  })
}

function stateOf (expiry: KeyExpiry | undefined): string {
  if (expiry === undefined || expiry.lastError !== null) return 'UNKNOWN'
  if (expiry.isExpired) return 'EXPIRED'
  return expiry.isExpiringSoon ? 'expires soon' : 'ok'
}

/** Left-aligned columns separated by two spaces. */
function formatTable (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map(row => (row[column] ?? '').length)))
  return [header, ...rows]
    .map(row => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd())
    .join('\n')
}
