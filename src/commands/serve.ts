// `serve`: load config, keys and caller secrets, start both listeners, run until stopped.

import type { CliIo } from '../cli.ts'
import { loadConfigFiles } from './load-files.ts'
import { startBroker } from '../app.ts'
import { ConfigError, exitCodes } from '../errors.ts'
import type { LoadedConfig } from '../reload.ts'
import { createLogger } from '../logging.ts'

/** How serve reads files holding secrets. */
export interface ServeOptions {
  /** Accept key and secret files that group or others may access (`--allow-insecure-key-permissions`). */
  readonly allowInsecurePermissions: boolean
}

/** Runs the broker from a config file until SIGINT/SIGTERM; throws ConfigError on a bad config, key file or secret file. */
export async function runServe (configPath: string, io: CliIo, options: ServeOptions = { allowInsecurePermissions: false }): Promise<number> {
  const { config, credentials, callerSecrets } = await loadConfigFiles(configPath, options)
  const logger = createLogger(config.logging.level)
  if (options.allowInsecurePermissions) logger.warn('--allow-insecure-key-permissions: key and secret files readable by group or others are accepted')
  const load = async (): Promise<LoadedConfig> => await loadConfigFiles(configPath, options)
  const broker = await startBroker(config, credentials, logger, { callerSecrets, load })
  logger.info({ proxy: broker.proxyUrl, admin: broker.adminUrl, tenants: [...broker.deps.tenants.keys()], callers: Object.keys(config.callers ?? {}) }, 'broker listening')
  io.onReload?.(() => {
    logger.info('reload requested (SIGHUP)')
    broker.deps.reload?.().then(
      () => { logger.info({ tenants: [...broker.deps.tenants.keys()] }, 'config reloaded') },
      (error: unknown) => {
        const issues = error instanceof ConfigError ? error.issues : [error instanceof Error ? error.message : String(error)]
        logger.error({ issues }, 'reload refused; the running config keeps serving')
      })
  })
  await io.untilStopped()
  logger.info('broker stopping')
  await broker.close()
  return exitCodes.ok
}
