// The root logger: JSON lines, request fields by allowlist, redaction as a backstop.

import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino'

/** Paths pino censors wherever they appear; a backstop behind logging by allowlist. */
export const redactPaths = [
  'req.headers.authorization', 'req.headers.dpop', 'req.headers.cookie', 'req.headers["proxy-authorization"]',
  'headers.authorization', 'headers.dpop', 'headers.cookie',
  '*.access_token', '*.client_assertion', '*.privateJwk', '*.rsaPrivateKey', '*.token', '*.proof', '*.assertion',
  '*.nin', '*.nins', '*.d', '*.p', '*.q', '*.dp', '*.dq', '*.qi',
  'access_token', 'client_assertion', 'privateJwk', 'token', 'proof', 'assertion', 'nin'
]

/** Creates the broker's root logger writing to `destination` (stdout by default). */
export function createLogger (level: LevelWithSilent, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'helseid-broker' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: {
      // Fastify's default serializer logs the URL with its query; ours logs the masked path only.
      req: (request: { method?: string, url?: string, id?: string }) => ({
        method: request.method,
        path: maskPath(request.url ?? ''),
        id: request.id
      }),
      res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
      err: pino.stdSerializers.err
    }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

const digitRun = /\d{6,}/

/**
 * A path fit for a log line: no query, and every segment that could identify a person (six or more
 * digits in a row, as in fødselsnummer and D-nummer, or longer than 32 characters, as opaque ids are)
 * replaced by `{id}`.
 */
export function maskPath (target: string): string {
  const queryStart = target.search(/[?#]/)
  const path = queryStart === -1 ? target : target.slice(0, queryStart)
  return path.split('/').map(segment => {
    if (segment.length > 32 || digitRun.test(segment)) return '{id}'
    // Without an escape the segment is what it says; with one, the decoded text is checked as well.
    if (!segment.includes('%')) return /[^\x21-\x7e]/.test(segment) ? '{id}' : segment
    let decoded = segment
    try { decoded = decodeURIComponent(segment) } catch { /* an invalid escape is masked below anyway */ }
    return digitRun.test(decoded) || /[^\x21-\x7e]/.test(decoded) ? '{id}' : segment
  }).join('/').slice(0, 512)
}
