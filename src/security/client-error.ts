// Requests Node's HTTP parser refuses (oversized headers, timeouts, bad framing) still get a problem+json answer.

import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errorCatalogue, type ErrorCode } from '../errors.ts'
import { handleError, problemType, sendProblem, toProblem } from '../http/problem.ts'

/** Fastify's clientErrorHandler: answers and closes; never logs the raw bytes the parser kept. */
export function handleClientError (error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [code, detail]: [ErrorCode, string] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['BROKER_REQUEST_TIMEOUT', 'the request was not received in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? ['BROKER_HEADERS_TOO_LARGE', 'the request headers are larger than limits.maxHeaderBytes']
        : ['BROKER_BAD_REQUEST', `the request is not valid HTTP (${error.code ?? 'parse error'})`]
  const { status, title } = errorCatalogue[code]
  const body = JSON.stringify({ type: problemType(code), title, status, detail, code, requestId: '' })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json; charset=utf-8\r\nhelseid-broker-error: ${code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/**
 * Fastify's frameworkErrors: a target its router cannot percent-decode (`%zz`, `%c0%ae`) is refused
 * like any other bad path. Fastify's default answer is plain JSON that echoes the path, which may hold
 * a national identity number.
 */
export function handleFrameworkError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL') {
    request.log.info({ code: 'BROKER_PATH_REJECTED' }, 'request refused')
    sendProblem(reply, toProblem('BROKER_PATH_REJECTED', 'the request path contains an invalid percent-escape', request.id))
    return
  }
  handleError(error, request, reply)
}
