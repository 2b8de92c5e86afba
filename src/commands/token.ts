// `token`: fetch one token for a tenant and API and print its decoded claims (the token itself only on request).

import { decodeJwt, decodeProtectedHeader } from 'jose'
import type { CliIo } from '../cli.ts'
import { loadConfigFiles, withDependencies } from './load-files.ts'
import { BrokerError, exitCodes } from '../errors.ts'

export interface TokenCommand {
  readonly configPath: string
  readonly tenant: string
  readonly api: string
  readonly showToken: boolean
  /** Accept key and secret files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions?: boolean
}

/** Fetches a token; exit 0 with claims printed, 1 when HelseID refuses or cannot be reached, 64 for an unknown tenant or API. */
export async function runToken (command: TokenCommand, io: CliIo): Promise<number> {
  const files = await loadConfigFiles(command.configPath, { allowInsecurePermissions: command.allowInsecurePermissions === true })
  return await withDependencies(files, {}, async deps => {
    try {
      const tenant = deps.tenants.get(command.tenant)
      if (tenant === undefined) {
        io.err(`no tenant named "${command.tenant}" in ${files.config.source}; configured: ${[...deps.tenants.keys()].join(', ')}`)
        return exitCodes.usage
      }
      const api = tenant.apis.get(command.api)
      if (api === undefined) {
        io.err(`tenant "${command.tenant}" has no API "${command.api}"; it has: ${[...tenant.apis.keys()].join(', ')}`)
        return exitCodes.usage
      }
      const token = await deps.tokens.getToken({ tenant: command.tenant, api: command.api }, api.tokenRequest)
      const summary: Record<string, unknown> = {
        tenant: command.tenant,
        api: command.api,
        tokenType: 'DPoP',
        scopes: token.scopes,
        expiresInSeconds: Math.round((token.expiresAtMs - token.issuedAtMs) / 1000),
        dpopKeyThumbprint: token.dpopJkt
      }
      try {
        summary.header = decodeProtectedHeader(token.value)
        summary.claims = decodeJwt(token.value)
      } catch {
        summary.claims = '(the token is not a JWT; its contents cannot be shown)'
      }
      io.out(JSON.stringify(summary, null, 2))
      if (command.showToken) io.out(token.value)
      return exitCodes.ok
    } catch (error) {
      if (!(error instanceof BrokerError)) throw error
      io.err(`${error.code}: ${error.message}`)
      return exitCodes.failure
    }
  })
}
