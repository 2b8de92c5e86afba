// Upstream connections: one keep-alive undici agent per API, and undici failures mapped to broker codes.

import type { Dispatcher } from 'undici'
import { createEgressDispatcher, type ProxyEnvironment } from '../http/egress.ts'
import { BrokerError } from '../errors.ts'
import type { ApiConfig } from '../config/config.ts'

/** Creates the keep-alive connection pool for one API, through the egress proxy when one is configured; `extraCa` adds trusted CAs (egress.caFile). */
export function createUpstreamAgent (api: ApiConfig, egressProxy: string | undefined, env: ProxyEnvironment, extraCa: readonly string[] = []): Dispatcher {
  return createEgressDispatcher(egressProxy, env, {
    connect: { timeout: api.connectTimeoutMs },
    headersTimeout: api.timeoutMs,
    bodyTimeout: api.timeoutMs,
    keepAliveTimeout: 30_000,
    connections: 256
  }, extraCa)
}

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** Maps a failed upstream exchange to BROKER_UPSTREAM_TIMEOUT (504) or BROKER_UPSTREAM_UNREACHABLE (502). */
export function toUpstreamError (error: unknown, api: ApiConfig): BrokerError {
  // Our own refusals (a request body over the limit) travel through undici unchanged.
  if (error instanceof BrokerError) return error
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
  if (timeoutCodes.has(code)) {
    return new BrokerError('BROKER_UPSTREAM_TIMEOUT', `API ${api.name} did not answer within ${api.timeoutMs} ms`, { cause: error })
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new BrokerError('BROKER_UPSTREAM_UNREACHABLE', `API ${api.name}: connecting timed out after ${api.connectTimeoutMs} ms (is the firewall open?)`, { cause: error })
  }
  const reason = code === '' ? 'connection failed' : code
  return new BrokerError('BROKER_UPSTREAM_UNREACHABLE', `API ${api.name} unreachable (${reason})`, { cause: error })
}

/** Maps a body that broke off after the upstream had answered: the call may have been carried out, so it is never called unreachable. */
export function toUpstreamBodyError (error: unknown, api: ApiConfig, statusCode: number): BrokerError {
  if (error instanceof BrokerError) return error
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
  if (timeoutCodes.has(code)) {
    return new BrokerError('BROKER_UPSTREAM_TIMEOUT', `API ${api.name} answered ${statusCode} but did not send the rest of its body within ${api.timeoutMs} ms; the call itself may have been carried out`, { cause: error })
  }
  return new BrokerError('BROKER_UPSTREAM_UNREACHABLE', `API ${api.name} answered ${statusCode} but its body broke off (${code === '' ? 'connection closed' : code}); the call itself may have been carried out`, { cause: error })
}
