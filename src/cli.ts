// Command line: parses argv, runs one command, returns the exit code (0 ok, 1 failure, 64 usage, 78 config).

import { parseArgs } from 'node:util'
import { ConfigError, exitCodes } from './errors.ts'

/** Where a command writes; injected so tests can capture it. */
export interface CliIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands wait on it. */
  readonly untilStopped: () => Promise<void>
  /** Registers what to do when the process is asked to reload (SIGHUP); serve uses it. */
  readonly onReload?: (handler: () => void) => void
  /** One line from stdin (hash-secret); default: process.stdin, with a prompt on stderr when it is a terminal. */
  readonly readLine?: () => Promise<string | undefined>
  /** Asks for a secret without echo (import's zip password); default: raw mode on process.stdin when it is a terminal, else none. */
  readonly readSecret?: (prompt: string) => Promise<string>
}

export const usage = `helseid-broker: HelseID token broker sidecar (client_credentials + private_key_jwt + DPoP)

Usage:
  helseid-broker serve --config FILE
  helseid-broker demo [--proxy-port N] [--admin-port N]
  helseid-broker check --config FILE
  helseid-broker token --config FILE --tenant NAME --api NAME [--show-token]
  helseid-broker import FILE --tenant NAME --config FILE [--api NAME]... [--parent N] [--child N] [--password-file F] [--force]
  helseid-broker keys status --config FILE   per tenant: key id, algorithm, size, file, expiry from Selvbetjening
  helseid-broker keys rotate --config FILE --tenant NAME   a new key for the tenant's client file, via Selvbetjening
  helseid-broker doctor --config FILE        DNS, TCP, TLS, HTTP to every host (via the proxy), clock skew, a token per tenant
  helseid-broker hash-secret [--generate]    a caller's secretHash: for a new random secret, or one line from stdin
  helseid-broker --help | --version

serve, check, token, keys and doctor refuse key and caller secret files that group or others may access (POSIX);
--allow-insecure-key-permissions accepts them.

Exit codes: 0 ok, 1 runtime failure, 64 usage error, 78 configuration error.`

const options = {
  config: { type: 'string' },
  tenant: { type: 'string' },
  api: { type: 'string' },
  'show-token': { type: 'boolean' },
  'proxy-port': { type: 'string' },
  'admin-port': { type: 'string' },
  generate: { type: 'boolean' },
  'allow-insecure-key-permissions': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'password-file': { type: 'string' },
  parent: { type: 'string' },
  child: { type: 'string' },
  force: { type: 'boolean' }
} as const

/** Runs the command named in argv (without node and script). */
export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true })
  } catch (error) {
    io.err(`${error instanceof Error ? error.message : String(error)}\n\n${usage}`)
    return exitCodes.usage
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals
  if (values.help === true || command === 'help') {
    io.out(usage)
    return exitCodes.ok
  }
  if (values.version === true) {
    io.out(`helseid-broker ${await packageVersion()}`)
    return exitCodes.ok
  }
  if (command === undefined) return usageError(io, 'no command given')
  // `keys` takes a subcommand (status, rotate) and `import` its FILE; every other command takes no positional argument.
  const extra = command === 'keys' || command === 'import' ? rest.slice(1) : rest
  if (extra.length > 0) return usageError(io, `unexpected argument "${extra[0] ?? ''}"`)

  const allowInsecurePermissions = values['allow-insecure-key-permissions'] === true
  if (allowInsecurePermissions && !['serve', 'check', 'token', 'keys', 'doctor'].includes(command)) return usageError(io, '--allow-insecure-key-permissions applies to serve, check, token, keys and doctor only')
  if (values.generate === true && command !== 'hash-secret') return usageError(io, '--generate applies to hash-secret only')

  // Each command's modules are loaded when it runs: `serve` never loads the demo servers, the zip reader or doctor.
  try {
    switch (command) {
      case 'serve':
        if (values.config === undefined) return usageError(io, 'serve needs --config FILE')
        return await (await import('./commands/serve.ts')).runServe(values.config, io, { allowInsecurePermissions })
      case 'check':
        if (values.config === undefined) return usageError(io, 'check needs --config FILE')
        return await (await import('./commands/check.ts')).runCheck(values.config, io.out, io.err, { allowInsecurePermissions })
      case 'token':
        if (values.config === undefined || values.tenant === undefined || values.api === undefined) {
          return usageError(io, 'token needs --config FILE --tenant NAME --api NAME')
        }
        return await (await import('./commands/token.ts')).runToken({ configPath: values.config, tenant: values.tenant, api: values.api, showToken: values['show-token'] === true, allowInsecurePermissions }, io)
      case 'keys':
        if (rest[0] === 'rotate') {
          if (values.config === undefined || values.tenant === undefined) return usageError(io, 'keys rotate needs --config FILE --tenant NAME')
          const { parseRotationStep, rotationPauseVariable, runKeysRotate } = await import('./commands/keys-rotate.ts')
          // Test hook for the kill tests: read here, once, and handed down as an option.
          const pause = process.env[rotationPauseVariable]
          const pauseAfter = pause === undefined || pause === '' ? undefined : parseRotationStep(pause)
          if (pause !== undefined && pause !== '' && pauseAfter === undefined) return usageError(io, `${rotationPauseVariable}: unknown rotation step "${pause}"`)
          return await runKeysRotate({ configPath: values.config, tenant: values.tenant, allowInsecurePermissions, ...(pauseAfter === undefined ? {} : { pauseAfter }) }, io)
        }
        if (rest[0] !== 'status') return usageError(io, rest[0] === undefined ? 'keys needs a subcommand: status or rotate' : `unknown keys subcommand "${rest[0]}"`)
        if (values.config === undefined) return usageError(io, 'keys status needs --config FILE')
        return await (await import('./commands/keys-status.ts')).runKeysStatus({ configPath: values.config, allowInsecurePermissions }, io)
      case 'doctor':
        if (values.config === undefined) return usageError(io, 'doctor needs --config FILE')
        return await (await import('./commands/doctor.ts')).runDoctorCommand({ configPath: values.config, allowInsecurePermissions }, io)
      case 'import': {
        const { parseImportArgs, runImport } = await import('./commands/import.ts')
        const { canPromptSecret, promptSecret } = await import('./onboarding/prompt-secret.ts')
        const importOptions = parseImportArgs(argv)
        if (typeof importOptions === 'string') return usageError(io, importOptions)
        const readSecret = io.readSecret ?? (canPromptSecret() ? async (prompt: string) => await promptSecret(prompt) : undefined)
        return await runImport(importOptions, { out: io.out, err: io.err, env: process.env, ...(readSecret === undefined ? {} : { readSecret }) })
      }
      case 'hash-secret':
        return await (await import('./commands/hash-secret.ts')).runHashSecret({ generate: values.generate === true }, { out: io.out, err: io.err, readLine: io.readLine ?? (async () => await readStdinLine(io)) })
      case 'demo': {
        const proxyPort = parsePort(values['proxy-port'], 8480)
        const adminPort = parsePort(values['admin-port'], 8481)
        if (proxyPort === undefined || adminPort === undefined) return usageError(io, '--proxy-port and --admin-port take a port number (0-65535)')
        const { runDemo } = await import('./commands/demo.ts')
        return await runDemo({ proxyPort, adminPort }, io)
      }
      default:
        return usageError(io, `unknown command "${command}"`)
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(error.message)
      return exitCodes.config
    }
    io.err(`helseid-broker ${command}: ${error instanceof Error ? error.message : String(error)}`)
    return exitCodes.failure
  }
}

async function readStdinLine (io: CliIo): Promise<string | undefined> {
  if (process.stdin.isTTY) io.err('Type the secret and press Enter (it shows on screen; piping it in from a file is safer):')
  const { readFirstLine } = await import('./commands/hash-secret.ts')
  return await readFirstLine(process.stdin)
}

function usageError (io: CliIo, message: string): number {
  io.err(`${message}\n\n${usage}`)
  return exitCodes.usage
}

function parsePort (value: string | undefined, fallback: number): number | undefined {
  if (value === undefined) return fallback
  const port = Number(value)
  return /^\d{1,5}$/.test(value) && port <= 65535 ? port : undefined
}

/** The version in package.json, which sits two folders above the running dist/src/cli.js (in the repository and when installed). */
async function packageVersion (): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return version
}
