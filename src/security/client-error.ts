// Requests Node's HTTP parser refuses (oversized headers, timeouts, bad framing) still get a problem+json answer.

import type { Socket } from 'node:net'
import { errorCatalogue, type ErrorCode } from '../errors.ts'
import { problemType } from '../http/problem.ts'

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
