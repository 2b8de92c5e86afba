// `serve`: load config and keys, start both listeners, run until stopped.

import type { CliIo } from '../cli.ts'
import { startBroker } from '../app.ts'
import { loadConfig } from '../config/load-config.ts'
import { exitCodes } from '../errors.ts'
import { loadTenantCredentials } from '../keys/tenant-keys.ts'
import { createLogger } from '../logging.ts'

/** Runs the broker from a config file until SIGINT/SIGTERM; throws ConfigError on a bad config. */
export async function runServe (configPath: string, io: CliIo): Promise<number> {
  const config = await loadConfig(configPath)
  const credentials = await loadTenantCredentials(config)
  const logger = createLogger(config.logging.level)
  const broker = await startBroker(config, credentials, logger)
  logger.info({ proxy: broker.proxyUrl, admin: broker.adminUrl, tenants: [...broker.deps.tenants.keys()] }, 'broker listening')
  await io.untilStopped()
  logger.info('broker stopping')
  await broker.close()
  return exitCodes.ok
}
