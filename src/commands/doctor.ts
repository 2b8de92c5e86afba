// `doctor`: can this server reach HelseID, Selvbetjening and every API (DNS, TCP, proxy, TLS, HTTP), is its clock right, and does HelseID issue each tenant a token.

import type { CliIo } from '../cli.ts'
import { loadConfigFiles, withDependencies } from './load-files.ts'
import { systemClock, type Clock } from '../clock.ts'
import { loadConfig } from '../config/load-config.ts'
import { formatDoctorReport, isHealthy } from '../doctor/doctor-report.ts'
import type { LookupAll } from '../doctor/network-probes.ts'
import { runDoctor, type TokenCheck } from '../doctor/run-doctor.ts'
import { BrokerError, IdpRejectedError, exitCodes } from '../errors.ts'
import type { ProxyEnvironment } from '../http/egress.ts'

export interface DoctorCommand {
  readonly configPath: string
  /** Accept key and secret files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions?: boolean
  /** Proxy variables; default process.env. */
  readonly env?: ProxyEnvironment
  readonly clock?: Clock
  /** Per network step; default 5000. */
  readonly stepTimeoutMs?: number
  /** Name resolution; default the system resolver. */
  readonly lookup?: LookupAll
}

/**
 * Prints the report; exit 0 when nothing failed, 1 otherwise.
 * @throws ConfigError (exit 78) for a bad config, key file, caller secret or egress.caFile
 */
export async function runDoctorCommand (command: DoctorCommand, io: CliIo): Promise<number> {
  const config = await loadConfig(command.configPath)
  const fileOptions = { allowInsecurePermissions: command.allowInsecurePermissions === true }
  const files = await loadConfigFiles(config, fileOptions)
  const env = command.env ?? process.env
  const clock = command.clock ?? systemClock
  // One attempt per token: doctor reports what HelseID answers now, it does not wait out an outage.
  return await withDependencies(files, { env, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } }, async deps => {
    const checkToken = async (tenantName: string, apiName: string): Promise<TokenCheck> => {
      const api = deps.tenants.get(tenantName)?.apis.get(apiName)
      if (api === undefined) return { ok: false, code: 'BROKER_API_NOT_FOUND', message: `tenant ${tenantName} has no API ${apiName}` }
      try {
        const token = await deps.tokens.getToken({ tenant: tenantName, api: apiName }, api.tokenRequest)
        return { ok: true, detail: `DPoP token issued, lifetime ${Math.round((token.expiresAtMs - token.issuedAtMs) / 1000)} s, scopes ${token.scopes.join(' ')}` }
      } catch (error) {
        if (!(error instanceof BrokerError)) throw error
        return { ok: false, code: error.code, message: error.message, ...(error instanceof IdpRejectedError ? { oauthError: error.oauthError } : {}) }
      }
    }
    const report = await runDoctor({
      config,
      env,
      extraCa: deps.extraCa,
      clock,
      checkToken,
      ...(command.stepTimeoutMs === undefined ? {} : { stepTimeoutMs: command.stepTimeoutMs }),
      ...(command.lookup === undefined ? {} : { lookup: command.lookup })
    })
    for (const line of formatDoctorReport(report)) io.out(line)
    return isHealthy(report) ? exitCodes.ok : exitCodes.failure
  })
}
