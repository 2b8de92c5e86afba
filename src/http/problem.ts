// RFC 9457 problem+json for every error the broker produces itself, with the helseid-broker-error header.

import type { FastifyReply, FastifyRequest } from 'fastify'
import { BrokerError, errorCatalogue, type ErrorCode } from '../errors.ts'

/** The header that tells a caller the error came from the broker, not the upstream API. */
export const errorHeader = 'helseid-broker-error'

/** The problem document the broker sends. */
export interface ProblemBody {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly code: ErrorCode
  readonly requestId: string
  readonly [extra: string]: string | number
}

/** The `type` URI of a code. */
export function problemType (code: ErrorCode): string {
  return `urn:helseid-broker:error:${code}`
}

/** Builds the problem body for a code. */
export function toProblem (code: ErrorCode, detail: string, requestId: string, extra: Readonly<Record<string, string>> = {}): ProblemBody {
  const { status, title } = errorCatalogue[code]
  return { ...extra, type: problemType(code), title, status, detail, code, requestId }
}

/** Sends a problem response. */
export function sendProblem (reply: FastifyReply, problem: ProblemBody): FastifyReply {
  return reply
    .code(problem.status)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .header('cache-control', 'no-store')
    .header(errorHeader, problem.code)
    .send(JSON.stringify(problem))
}

/** Fastify's own client errors (bad JSON, body too large, bad header…) keep their 4xx status under a broker code. */
function fastifyClientError (error: unknown): { statusCode: number, message: string } | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { statusCode, code } = error as { statusCode?: unknown, code?: unknown }
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) return undefined
  return { statusCode, message: typeof code === 'string' ? `request refused (${code})` : 'request refused' }
}

/** The one error handler of both listeners. */
export function handleError (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof BrokerError) {
    if (error.statusCode >= 500) {
      request.log.warn({ code: error.code, err: error }, 'request failed')
    } else {
      request.log.info({ code: error.code, detail: error.message }, 'request refused')
    }
    reply.headers(error.headers)
    return sendProblem(reply, toProblem(error.code, error.message, request.id, error.extra))
  }
  const clientError = fastifyClientError(error)
  if (clientError !== undefined) {
    const code: ErrorCode = 'BROKER_BAD_REQUEST'
    request.log.info({ code }, 'request refused')
    return sendProblem(reply, { ...toProblem(code, clientError.message, request.id), status: clientError.statusCode })
  }
  request.log.error({ err: error }, 'unexpected error')
  return sendProblem(reply, toProblem('BROKER_INTERNAL', 'internal error', request.id))
}
