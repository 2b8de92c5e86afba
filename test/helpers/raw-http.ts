// Raw HTTP/1.x over node:net, for requests no HTTP client will send: bytes go out exactly as given,
// and the answer is parsed just enough to tell status, headers and body apart.

import { connect, type Socket } from 'node:net'

/** What to send: bytes, or a function that writes to the connected socket at its own pace. */
export type RawRequest = string | Buffer | ((socket: Socket) => Promise<void>)

/** One final (non-1xx) response. */
export interface RawResponse {
  readonly status: number
  /** Lower-case names; repeated headers joined with ', '. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The `helseid-broker-error` header: set when the broker itself answered. */
  readonly code: string | undefined
}

/** Everything that came back on one connection. */
export interface RawExchange {
  readonly responses: readonly RawResponse[]
  /** 1xx interim responses seen (100 Continue). */
  readonly interim: number
  /** The server closed or reset the connection. */
  readonly closed: boolean
  /** Neither enough responses nor a close arrived within the time allowed. */
  readonly timedOut: boolean
  /** Every byte received, as latin1. */
  readonly raw: string
  readonly elapsedMs: number
}

export interface ExchangeOptions {
  /** Give up (and destroy the socket) after this long; default 3000 ms. */
  readonly timeoutMs?: number
  /** Final responses to wait for; default 1. */
  readonly responses?: number
  /** After the awaited responses, keep listening this long for unexpected extra ones; default 0. */
  readonly graceMs?: number
  /** The first request is HEAD: its response has no body whatever Content-Length says. */
  readonly isHead?: boolean
}

/** Sends `request` on a fresh connection to 127.0.0.1:`port` and collects the answer; never rejects, never hangs past timeoutMs. */
export async function exchange (port: number, request: RawRequest, options: ExchangeOptions = {}): Promise<RawExchange> {
  const { timeoutMs = 3000, responses: wanted = 1, graceMs = 0 } = options
  const isHead = options.isHead ?? (typeof request === 'string' && request.startsWith('HEAD '))
  const startedAt = Date.now()
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    let received = Buffer.alloc(0)
    let isClosed = false
    let isDone = false
    let graceTimer: NodeJS.Timeout | undefined
    const finish = (timedOut: boolean): void => {
      if (isDone) return
      isDone = true
      clearTimeout(deadline)
      clearTimeout(graceTimer)
      const parsed = parseResponses(received, isHead, isClosed)
      socket.destroy()
      resolve({ ...parsed, closed: isClosed, timedOut, raw: received.toString('latin1'), elapsedMs: Date.now() - startedAt })
    }
    const deadline = setTimeout(() => { finish(true) }, timeoutMs)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (graceTimer === undefined && parseResponses(received, isHead, false).responses.length >= wanted) {
        if (graceMs === 0) finish(false)
        else graceTimer = setTimeout(() => { finish(false) }, graceMs)
      }
    })
    // A reset after the answer (the server destroyed a socket with unread bytes) still counts as a close.
    socket.on('error', () => {})
    socket.on('close', () => {
      isClosed = true
      finish(false)
    })
    socket.on('connect', () => {
      if (typeof request === 'function') {
        request(socket).catch(() => {})
      } else {
        socket.write(request, () => {})
      }
    })
  })
}

/** Parses as many complete responses as `data` holds; a body without length ends at the close. */
function parseResponses (data: Buffer, isHead: boolean, isClosed: boolean): { responses: RawResponse[], interim: number } {
  const responses: RawResponse[] = []
  let interim = 0
  let offset = 0
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', offset, 'latin1')
    if (headEnd === -1) break
    const head = data.subarray(offset, headEnd).toString('latin1')
    const [statusLine = '', ...lines] = head.split('\r\n')
    const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)
    if (match === null) break
    const status = Number(match[1])
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    let bodyStart = headEnd + 4
    if (status < 200) {
      interim++
      offset = bodyStart
      continue
    }
    const isFirstFinal = responses.length === 0
    let bodyEnd: number
    if ((isHead && isFirstFinal) || status === 204 || status === 304) {
      bodyEnd = bodyStart
    } else if (headers['content-length'] !== undefined) {
      bodyEnd = bodyStart + Number(headers['content-length'])
      if (data.length < bodyEnd) break
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunked = readChunked(data, bodyStart)
      if (chunked === undefined) break
      responses.push({ status, headers, body: chunked.body, code: headers['helseid-broker-error'] })
      offset = chunked.end
      continue
    } else {
      if (!isClosed) break
      bodyEnd = data.length
    }
    responses.push({ status, headers, body: data.subarray(bodyStart, bodyEnd).toString('utf8'), code: headers['helseid-broker-error'] })
    offset = bodyEnd
    bodyStart = offset
  }
  return { responses, interim }
}

function readChunked (data: Buffer, start: number): { body: string, end: number } | undefined {
  const parts: Buffer[] = []
  let offset = start
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset, 'latin1')
    if (lineEnd === -1) return undefined
    const size = Number.parseInt(data.subarray(offset, lineEnd).toString('latin1').split(';')[0] ?? '', 16)
    if (!Number.isFinite(size)) return undefined
    if (size === 0) {
      const trailerEnd = data.indexOf('\r\n', lineEnd + 2, 'latin1')
      // Trailers are not expected; an empty line ends the message.
      if (trailerEnd === -1) return undefined
      return { body: Buffer.concat(parts).toString('utf8'), end: trailerEnd + 2 }
    }
    if (data.length < lineEnd + 2 + size + 2) return undefined
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    offset = lineEnd + 2 + size + 2
  }
}

/** Writes `text` a few bytes at a time, pausing between writes, until it is all sent or the server has answered or closed. */
export function trickle (text: string, options: { bytesPerWrite?: number, pauseMs?: number } = {}): (socket: Socket) => Promise<void> {
  const { bytesPerWrite = 1, pauseMs = 50 } = options
  return async socket => {
    for (let index = 0; index < text.length; index += bytesPerWrite) {
      if (socket.destroyed || socket.bytesRead > 0) return
      socket.write(text.slice(index, index + bytesPerWrite))
      await new Promise(resolve => setTimeout(resolve, pauseMs))
    }
  }
}
