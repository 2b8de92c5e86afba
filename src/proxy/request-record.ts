// What is kept of each finished request: one log line (by allowlist), a count for the metrics and,
// when an audit file is configured, one audit entry.

import type { Logger } from 'pino'
import type { BrokerMetrics } from '../admin/metrics.ts'
import { maskPath } from '../logging.ts'
import { upstreamRequestIdOf, type AuditLog } from '../security/audit-log.ts'
import type { CompletedRequest } from './proxy-handler.ts'

/** The fields of a request line; everything else about the request stays out of the log. */
export interface RequestLine {
  readonly requestId: string
  readonly request: { readonly method?: string | undefined, readonly url?: string | undefined }
  readonly tenant?: string | undefined
  readonly api?: string | undefined
  readonly caller?: string | undefined
  readonly status: number
  /** False when the answer did not reach the caller whole; absent on the admin listener. */
  readonly isComplete?: boolean
  readonly durationMs: number
}

/** Writes request lines through a child of `logger` without redaction (the fields are allowlisted already). */
export function createRequestLines (logger: Logger): (line: RequestLine) => void {
  const lines = logger.child({}, { redact: { paths: [] } })
  return line => {
    // A reload may change the root logger's level; the child follows it.
    if (lines.level !== logger.level) lines.level = logger.level
    // The `req` serializer (logging.ts) keeps the method and the masked path, never the query.
    lines.info({
      reqId: line.requestId,
      req: line.request,
      tenant: line.tenant,
      api: line.api,
      caller: line.caller,
      status: line.status,
      ...(line.isComplete === false ? { incomplete: true } : {}),
      durationMs: line.durationMs
    }, 'request completed')
  }
}

export interface RequestRecorder {
  /** Records one finished proxy request. */
  readonly record: (completed: CompletedRequest) => void
  /** Hands the counts gathered since the last call to prom-client; called at scrape time. */
  readonly flushCounts: () => void
}

interface CountEntry {
  readonly labels: { readonly tenant: string, readonly api: string, readonly method: string, readonly status: string }
  count: number
  reported: number
}

export interface RequestRecorderOptions {
  readonly writeLine: (line: RequestLine) => void
  readonly metrics: BrokerMetrics
  readonly audit: AuditLog
  /** Read per request: a reload cannot add an audit file, but the check is cheap and honest. */
  readonly isAuditEnabled: () => boolean
}

/**
 * Creates the recorder. Counts go to a Map and reach prom-client at scrape time: a labelled counter
 * increment per request costs more than the rest of the record together.
 */
export function createRequestRecorder (options: RequestRecorderOptions): RequestRecorder {
  const counts = new Map<string, CountEntry>()
  return {
    record (completed) {
      const method = completed.request.method ?? ''
      if (completed.tenant !== undefined && completed.api !== undefined) {
        const key = `${completed.tenant}\u0000${completed.api}\u0000${method}\u0000${completed.status}`
        const entry = counts.get(key)
        if (entry === undefined) counts.set(key, { labels: { tenant: completed.tenant, api: completed.api, method, status: String(completed.status) }, count: 1, reported: 0 })
        else entry.count++
      }
      options.writeLine(completed)
      if (!options.isAuditEnabled()) return
      options.audit.record({
        requestId: completed.requestId,
        caller: completed.caller,
        tenant: completed.tenant,
        api: completed.api,
        method,
        path: maskPath(completed.request.url ?? ''),
        status: completed.status,
        ...(completed.isComplete ? {} : { incomplete: true }),
        durationMs: completed.durationMs,
        code: completed.code,
        upstreamRequestId: completed.upstreamHeaders === undefined ? undefined : upstreamRequestIdOf(completed.upstreamHeaders)
      })
    },
    flushCounts () {
      for (const entry of counts.values()) {
        if (entry.count > entry.reported) {
          options.metrics.requests.inc(entry.labels, entry.count - entry.reported)
          entry.reported = entry.count
        }
      }
    }
  }
}
