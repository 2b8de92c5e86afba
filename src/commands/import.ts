// `import`: a Selvbetjening download (encrypted zip or extracted JSON) → keys/<tenant>.json (0600, atomic) + the tenant in the config.

import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { BrokerConfig } from '../config/config.ts'
import { parseConfigText } from '../config/load-config.ts'
import { ConfigError, exitCodes } from '../errors.ts'
import type { ClientKey } from '../keys/client-key.ts'
import { KeyFileError, parseClientKey } from '../keys/load-client-key.ts'
import { isErrnoException } from '../onboarding/atomic-write.ts'
import { PromptCancelledError } from '../onboarding/prompt-secret.ts'
import { DownloadError, readDownload, type ClientDownload, type PasswordSource } from '../onboarding/read-download.ts'
import { TenantApisNeededError, updateTenantConfig, type ConfigUpdate } from '../onboarding/update-config.ts'
import { ImportRefusedError, WriteFailure, writeImport, type WriteResult } from '../onboarding/write-import.ts'

/** The environment variable that may hold the zip password (for scripts; --password-file is safer). */
export const zipPasswordEnv = 'HELSEID_BROKER_ZIP_PASSWORD'
/** How many times the interactive prompt asks again after a wrong password. */
export const maxPromptAttempts = 3

/** What to import, from the command line. */
export interface ImportOptions {
  /** The Selvbetjening download: the zip as delivered, or the JSON extracted from it. */
  readonly file: string
  readonly configPath: string
  readonly tenant: string
  /** A file whose first line is the zip password. */
  readonly passwordFile?: string
  readonly apis?: readonly string[]
  readonly parent?: string
  readonly child?: string
  /** Replace a key file holding another client (the old one is kept as a .bak). */
  readonly force: boolean
}

/** Where import reads and writes; injected so tests can feed the password prompt, the environment and the clock. */
export interface ImportIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  /** Asks for a secret without echo; undefined when there is no terminal to ask on. */
  readonly readSecret?: (prompt: string) => Promise<string>
  /** Default process.env; only HELSEID_BROKER_ZIP_PASSWORD is read. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** For the .bak name; default the system clock. */
  readonly now?: () => Date
}

/** A mistake on the command line (exit 64); the message says how to fix it. */
class ImportUsageError extends Error {}

const importOptions = {
  config: { type: 'string' },
  tenant: { type: 'string' },
  api: { type: 'string', multiple: true },
  parent: { type: 'string' },
  child: { type: 'string' },
  'password-file': { type: 'string' },
  force: { type: 'boolean' }
} as const

const tenantNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/

/**
 * Parses `import FILE --tenant NAME --config FILE [--password-file F] [--api NAME ...] [--parent N] [--child N] [--force]`
 * (argv without node and script, the command word included); --api may be repeated or hold a comma-separated list.
 * @returns the options, or the problem as a string (a usage error)
 */
export function parseImportArgs (argv: readonly string[]): ImportOptions | string {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: importOptions, allowPositionals: true, strict: true })
  } catch (error) {
    return `import: ${error instanceof Error ? error.message : String(error)}`
  }
  const { values, positionals } = parsed
  const [, file, ...extra] = positionals
  if (file === undefined || values.config === undefined || values.tenant === undefined) return 'import needs FILE --tenant NAME --config FILE'
  if (extra.length > 0) return `import takes one FILE; unexpected argument "${extra[0] ?? ''}"`
  if (!tenantNamePattern.test(values.tenant)) return `--tenant ${JSON.stringify(values.tenant)}: 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit`
  for (const [flag, value] of [['--parent', values.parent], ['--child', values.child]] as const) {
    if (value !== undefined && !/^\d{9}$/.test(value)) return `${flag} takes an organisation number of 9 digits, got ${JSON.stringify(value)}`
  }
  const apis = values.api?.flatMap(value => value.split(',')).map(value => value.trim())
  if (apis !== undefined && apis.some(api => api === '')) return '--api takes an API name from the config'
  return {
    file,
    configPath: values.config,
    tenant: values.tenant,
    ...(values['password-file'] === undefined ? {} : { passwordFile: values['password-file'] }),
    ...(apis === undefined ? {} : { apis }),
    ...(values.parent === undefined ? {} : { parent: values.parent }),
    ...(values.child === undefined ? {} : { child: values.child }),
    force: values.force === true
  }
}

/**
 * Imports the download: checks it (client id, authority = the broker's issuer, a usable key), writes
 * `<config dir>/keys/<tenant>.json` exactly as delivered (0600, atomically) and adds or updates the tenant in the config
 * (in place, comments kept), after checking the resulting config. Prints what was done; never a key or the password.
 * Exit 0; 64 for usage errors (including "no way to get the zip password"); 78 for an unusable download, a wrong
 * password, a key or config that does not fit, or a key file of another client without --force; 1 when writing fails
 * (everything is then rolled back).
 */
export async function runImport (options: ImportOptions, io: ImportIo): Promise<number> {
  const configPath = resolve(options.configPath)
  try {
    const configText = await readConfig(configPath)
    const download = await readDownload(options.file, passwordSource(options, io))
    const key = await checkDownload(download)
    const clientFile = `keys/${options.tenant}.json`
    const update = updateTenantConfig(configText, {
      tenant: options.tenant,
      client: clientFile,
      clientId: key.clientId,
      ...(options.apis === undefined ? {} : { apis: options.apis }),
      ...(options.parent === undefined && options.child === undefined ? {} : { organization: { ...(options.parent === undefined ? {} : { parent: options.parent }), ...(options.child === undefined ? {} : { child: options.child }) } })
    })
    const config = checkResultingConfig(update.text, configPath, key)
    const target = join(dirname(configPath), 'keys', `${options.tenant}.json`)
    const written = await writeImport({ configPath, configText, update, target, download, clientId: key.clientId, force: options.force, now: io.now ?? (() => new Date()) })
    report(io, { options, configPath, download, key, update, config, written })
    return exitCodes.ok
  } catch (error) {
    return reportFailure(io, error)
  }
}

function passwordSource (options: ImportOptions, io: ImportIo): PasswordSource {
  let isPrompting = false
  return async attempt => {
    if (attempt === 1 && options.passwordFile !== undefined) return await readPasswordFile(options.passwordFile)
    const fromEnv = (io.env ?? process.env)[zipPasswordEnv]
    if (attempt === 1 && options.passwordFile === undefined && fromEnv !== undefined && fromEnv !== '') return fromEnv
    if (attempt === 1 && io.readSecret !== undefined) isPrompting = true
    if (!isPrompting || io.readSecret === undefined || attempt > maxPromptAttempts) return undefined
    if (attempt > 1) io.err('Wrong password; try again.')
    return await io.readSecret('Zip password (sent by SMS when the client configuration was downloaded): ')
  }
}

async function readPasswordFile (file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new ImportUsageError(`--password-file ${resolve(file)}: cannot read the file: ${isErrnoException(error) ? error.code : String(error)}`)
  }
  const line = text.replace(/^\uFEFF/, '').split('\n')[0]?.replace(/\r$/, '') ?? ''
  if (line === '') throw new ImportUsageError(`--password-file ${resolve(file)}: the first line is empty; put the zip password on it`)
  return line
}

async function readConfig (configPath: string): Promise<string> {
  try {
    return await readFile(configPath, 'utf8')
  } catch (error) {
    throw new ImportRefusedError(`cannot read the config file ${configPath}: ${isErrnoException(error) ? error.code : String(error)}; create it first (see deploy/helseid-broker.example.yaml); nothing was written`)
  }
}

type ImportedKey = ClientKey & { readonly clientId: string, readonly authority: string }

async function checkDownload (download: ClientDownload): Promise<ImportedKey> {
  const label = download.entryName === undefined ? download.source : `${download.source} (${download.entryName})`
  const { clientId } = download.json
  if (typeof clientId !== 'string' || clientId.trim() === '') {
    throw new KeyFileError(label, 'is not a HelseID Selvbetjening download: it has no clientId. import takes the zip from Selvbetjening or the JSON file extracted from it; a plain private JWK file can be copied into keys/ by hand, with clientId: set on the tenant')
  }
  const key = await parseClientKey(download.json, label)
  if (key.clientId === undefined || key.authority === undefined) throw new KeyFileError(label, 'is not a HelseID Selvbetjening download (no clientId or authority)')
  return { ...key, clientId: key.clientId, authority: key.authority }
}

function checkResultingConfig (text: string, configPath: string, key: ImportedKey): BrokerConfig {
  const config = parseConfigText(text, configPath)
  if (key.authority !== config.helseid.issuer) {
    throw new KeyFileError(key.file, `is for ${key.authority} but the broker's issuer is ${config.helseid.issuer} (helseid: in ${configPath}); import a client made in the matching Selvbetjening (test or prod)`)
  }
  return config
}

interface Report {
  readonly options: ImportOptions
  readonly configPath: string
  readonly download: ClientDownload
  readonly key: ImportedKey
  readonly update: ConfigUpdate
  readonly config: BrokerConfig
  readonly written: WriteResult
}

function report (io: ImportIo, { options, configPath, download, key, update, config, written }: Report): void {
  const tenant = config.tenants[options.tenant]
  const clientName = typeof download.json.clientName === 'string' ? ` (${download.json.clientName})` : ''
  const from = download.entryName === undefined ? download.source : `${download.source}, ${download.entryName} (${download.encryption === 'none' ? 'not encrypted' : download.encryption})`
  const size = key.kty === 'RSA' ? `RSA ${key.sizeBits} bits` : `EC ${key.crv ?? ''}`
  for (const other of download.otherClientFiles) io.err(`note: the zip also holds ${other}; it was not imported (the first client file is)`)
  io.out(`imported client ${key.clientId}${clientName} for ${key.authority}`)
  io.out(`  from: ${from}`)
  io.out(`  key: kid ${key.kid}, ${key.alg}, ${size}`)
  const target = join(dirname(configPath), 'keys', `${options.tenant}.json`)
  io.out(`  key file: ${target} (${written.keyFile === 'unchanged' ? 'unchanged, it already held this download' : `${written.keyFile}, mode 0600`})`)
  if (written.backup !== undefined) io.out(`  previous key file kept as: ${written.backup}`)
  if (update.method === 'unchanged') io.out(`  config: ${configPath} unchanged`)
  else for (const change of update.changes) io.out(`  config: ${change}`)
  if (update.method === 'rewritten') io.out('  (the config was rewritten by the YAML library: comments are kept, but indentation of comments and spacing in [..] and {..} may have changed)')
  if (tenant !== undefined) {
    const { parent, child } = tenant.organization
    const organization = [parent === undefined ? '' : `parent ${parent}`, child === undefined ? '' : `child ${child}`].filter(part => part !== '').join(' ')
    io.out(`  tenant ${tenant.name}: apis ${tenant.apis.join(', ')}${organization === '' ? '' : `, organization ${organization}`}`)
  }
  if (written.isDirectoryCreated && process.platform !== 'win32' && process.getuid?.() === 0) {
    io.out(`  ${dirname(target)} was created owned by root (mode 0700): if the broker runs as another user, run: chown -R <that user> ${dirname(target)}`)
  }
  if (process.platform === 'win32') io.out(`  restrict ${dirname(target)} to the service account with icacls (README, File permissions)`)
  io.out('next:')
  io.out(`  helseid-broker check --config ${configPath}`)
  io.out(`  helseid-broker token --config ${configPath} --tenant ${options.tenant} --api ${tenant?.apis[0] ?? 'NAME'}`)
  io.out('  then restart the broker (serve) if it is running, so that it loads the new key')
  if (download.entryName === undefined) io.out(`  ${download.source} holds the private key unencrypted: delete it once check passes (the broker has its own copy)`)
}

function reportFailure (io: ImportIo, error: unknown): number {
  if (error instanceof ImportUsageError) {
    io.err(`import: ${error.message}`)
    return exitCodes.usage
  }
  if (error instanceof TenantApisNeededError) {
    io.err(`import: ${error.message}`)
    return exitCodes.usage
  }
  if (error instanceof DownloadError && error.problem === 'password-needed') {
    io.err(`import: ${error.message}. Give it with --password-file FILE (its first line), in the environment variable ${zipPasswordEnv}, or run the command in a terminal to be asked for it`)
    return exitCodes.usage
  }
  if (error instanceof DownloadError || error instanceof KeyFileError || error instanceof ImportRefusedError) {
    io.err(`import: ${error.message}${error instanceof ImportRefusedError ? '' : '; nothing was written'}`)
    return exitCodes.config
  }
  if (error instanceof ConfigError) {
    io.err(`import: nothing was written; the config (with the imported tenant) has ${error.issues.length === 1 ? 'this problem' : 'these problems'}:`)
    for (const issue of error.issues) io.err(`  ${issue}`)
    return exitCodes.config
  }
  if (error instanceof PromptCancelledError) {
    io.err('import: cancelled; nothing was written')
    return exitCodes.failure
  }
  if (error instanceof WriteFailure) {
    io.err(`import: writing failed (${error.message}); nothing was changed`)
    return exitCodes.failure
  }
  throw error
}
