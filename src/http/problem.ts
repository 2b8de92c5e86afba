// RFC 9457 problem+json for every error the broker produces itself, with the helseid-broker-error header.
// The mapping from an error to its problem is Fastify-free (the proxy listener is plain node:http); the
// admin listener's Fastify error handler is a thin adapter over it.

import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
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

/** The headers of every problem response. */
function problemHeaders (problem: ProblemBody): Record<string, string> {
  return {
    'content-type': 'application/problem+json; charset=utf-8',
    'cache-control': 'no-store',
    [errorHeader]: problem.code
  }
}

/** Sends a problem response through Fastify (admin listener). */
export function sendProblem (reply: FastifyReply, problem: ProblemBody): FastifyReply {
  return reply.code(problem.status).headers(problemHeaders(problem)).send(JSON.stringify(problem))
}

/** Writes a problem response on a plain node:http response (proxy listener); `headers` add to or replace the problem's own. */
export function writeProblem (response: ServerResponse, problem: ProblemBody, headers: Readonly<Record<string, string>> = {}): void {
  const body = JSON.stringify(problem)
  response.writeHead(problem.status, { ...problemHeaders(problem), ...headers, 'content-length': String(Buffer.byteLength(body)) })
  response.end(body)
}

/** Fastify's own client errors (bad JSON, body too large, bad header…) keep their 4xx status under a broker code. */
function frameworkClientError (error: unknown): { statusCode: number, message: string } | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { statusCode, code } = error as { statusCode?: unknown, code?: unknown }
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) return undefined
  return { statusCode, message: typeof code === 'string' ? `request refused (${code})` : 'request refused' }
}

/** What an error becomes: the problem, the headers that go with it, and a log line that names it safely. */
export interface ErrorAnswer {
  readonly problem: ProblemBody
  readonly headers: Readonly<Record<string, string>>
  readonly level: 'info' | 'warn' | 'error'
  readonly fields: Readonly<Record<string, unknown>>
  readonly message: string
}

/** Logs the answer's line; `bindings` add fields such as the request id. */
export function logErrorAnswer (logger: Logger, answer: ErrorAnswer, bindings: Readonly<Record<string, unknown>> = {}): void {
  logger[answer.level]({ ...bindings, ...answer.fields }, answer.message)
}

/** Maps any error to the broker's answer; unknown errors become BROKER_INTERNAL, never their message. */
export function answerError (error: unknown, requestId: string): ErrorAnswer {
  if (error instanceof BrokerError) {
    return {
      problem: toProblem(error.code, error.message, requestId, error.extra),
      headers: error.headers,
      ...(error.statusCode >= 500
        ? { level: 'warn', fields: { code: error.code, err: error }, message: 'request failed' } as const
        : { level: 'info', fields: { code: error.code, detail: error.message }, message: 'request refused' } as const)
    }
  }
  const clientError = frameworkClientError(error)
  if (clientError !== undefined) {
    const code: ErrorCode = 'BROKER_BAD_REQUEST'
    return {
      problem: { ...toProblem(code, clientError.message, requestId), status: clientError.statusCode },
      headers: {},
      level: 'info',
      fields: { code },
      message: 'request refused'
    }
  }
  return {
    problem: toProblem('BROKER_INTERNAL', 'internal error', requestId),
    headers: {},
    level: 'error',
    fields: { err: error },
    message: 'unexpected error'
  }
}

/** The admin listener's error handler. */
export function handleError (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = answerError(error, request.id)
  logErrorAnswer(request.log as unknown as Logger, answer)
  reply.headers(answer.headers)
  return sendProblem(reply, answer.problem)
}
