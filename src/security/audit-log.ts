// The audit log: one JSON line per proxied call, in a file or stream of its own, never a token or personal number.

import { pino, type Logger } from 'pino'

/** One proxied call as the audit log records it. */
export interface AuditEntry {
  readonly requestId: string
  readonly caller: string | undefined
  readonly tenant: string | undefined
  readonly api: string | undefined
  readonly method: string
  /** The path with identifiers masked (logging.ts maskPath), no query. */
  readonly path: string
  /** The status sent; 499 when the caller went away before any answer. */
  readonly status: number
  /** Present when the answer did not reach the caller whole (the caller went away, or the upstream's body broke off). */
  readonly incomplete?: true
  readonly durationMs: number
  /** The broker's own error code, when the broker answered. */
  readonly code: string | undefined
  /** The upstream's correlation id header, when it sent one. */
  readonly upstreamRequestId: string | undefined
}

export interface AuditLog {
  readonly record: (entry: AuditEntry) => void
  readonly close: () => Promise<void>
}

/** Writes to `file` (`-` for stdout); undefined gives a log that records nothing. */
export function createAuditLog (file: string | undefined): AuditLog {
  if (file === undefined) return { record: () => {}, close: async () => {} }
  const destination = pino.destination({ dest: file === '-' ? 1 : file, mkdir: true, sync: false })
  const logger: Logger = pino({
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: () => ({ log: 'audit' }) }
  }, destination)
  let isReady = false
  destination.once('ready', () => { isReady = true })
  return {
    record: entry => { logger.info({ ...entry, event: 'proxied' }) },
    close: async () => {
      // sonic-boom opens the file asynchronously: writes queue until it is ready, and so must closing.
      if (!isReady) await new Promise(resolve => destination.once('ready', resolve))
      if (file === '-') {
        destination.flushSync()
        return
      }
      const closed = new Promise(resolve => destination.once('close', resolve))
      destination.end()
      await closed
    }
  }
}

const correlationHeaders = ['x-correlation-id', 'x-request-id', 'request-id', 'traceresponse'] as const
const safeId = /^[\w\-.:]{1,128}$/

/** The upstream's correlation id, if it sent one that is safe to record. */
export function upstreamRequestIdOf (headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  for (const name of correlationHeaders) {
    const value = headers[name]
    if (typeof value === 'string' && safeId.test(value)) return value
  }
  return undefined
}
