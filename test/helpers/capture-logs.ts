// A pino destination that keeps every line in memory, for assertions on what the broker logs.

import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createLogger } from '../../src/logging.ts'

/** A logger at `trace` (every level) whose output stays in `lines`. */
export function captureLogs (): { readonly logger: Logger, readonly lines: string[], readonly text: () => string } {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(line => line !== ''))
      callback()
    }
  })
  return { logger: createLogger('trace', stream), lines, text: () => lines.join('\n') }
}

/** One logged JSON line. */
export interface LogLine { readonly level: number, readonly msg: string, readonly [field: string]: unknown }

/** The captured lines whose message is `msg`, parsed, in the order they were written. */
export function logLines (lines: readonly string[], msg: string): LogLine[] {
  return lines.map(line => JSON.parse(line) as LogLine).filter(line => line.msg === msg)
}
