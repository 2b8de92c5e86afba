// node dist/bench/micro.js: what each per-request step of the broker costs, in-process (no sockets), so that a
// change to the hot path can be judged without the noise of a loopback load test. Each step runs in a tight loop;
// the median of 7 rounds is printed in µs per call, next to a cheaper alternative where one is suggested.

import { EventEmitter } from 'node:events'
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { createMetrics } from '../src/admin/metrics.ts'
import { createDpopKey, accessTokenHash } from '../src/helseid/dpop-key.ts'
import { createLogger, maskPath } from '../src/logging.ts'
import { createRequestLines } from '../src/proxy/request-record.ts'
import { toCallerHeaders, toUpstreamHeaders } from '../src/proxy/forward-headers.ts'
import { parseProxyTarget, toUpstreamUrl } from '../src/proxy/target-url.ts'
import { toCacheKey } from '../src/tokens/cache-key.ts'
import type { TokenRequest } from '../src/helseid/token-client.ts'
import type { ClientKey } from '../src/keys/client-key.ts'
import { personPath } from './lib/fixtures.ts'

const rounds = 7

/** Median µs per call of `fn` over `rounds` rounds of `iterations` calls (after a warm-up round). */
function time (fn: (index: number) => unknown, iterations: number): number {
  let sink: unknown
  for (let index = 0; index < iterations; index++) sink = fn(index)
  const results: number[] = []
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint()
    for (let index = 0; index < iterations; index++) sink = fn(index)
    results.push(Number(process.hrtime.bigint() - started) / iterations / 1000)
  }
  if (sink === Symbol.for('never')) console.log(sink)
  return results.sort((a, b) => a - b)[Math.floor(rounds / 2)] ?? Number.NaN
}

const rows: Array<{ step: string, us: number, note: string }> = []
function row (step: string, us: number, note = ''): void {
  rows.push({ step, us, note })
  console.log(`${us.toFixed(2).padStart(8)} µs  ${step}${note === '' ? '' : `  (${note})`}`)
}

async function main (): Promise<void> {
  const rawTarget = `/t001/persontjenesten${personPath}`
  const baseUrl = 'https://api.persontjenesten.nhn.no'

  // DPoP proof: one ES256 signature per call (the broker's unavoidable work).
  const dpopKey = await createDpopKey()
  const token = `eyJ${'x'.repeat(700)}`
  const ath = accessTokenHash(token)
  const htu = `${baseUrl}/api/v3/restricted-access/person/${'a'.repeat(64)}`
  row('DPoP proof (ES256, node:crypto sign)', time(() => dpopKey.proof({ htm: 'GET', htu, ath }, Date.now()), 3000))

  // The request log line as app.ts writes it: Fastify's per-request child logger, then info({ req: raw, … }).
  const sink = new Writable({ write (_chunk, _encoding, callback) { callback() } })
  const logger = createLogger('info', sink)
  const raw = new IncomingMessage(new Socket())
  raw.method = 'GET'
  raw.url = rawTarget
  raw.headers = { host: '127.0.0.1:8480', 'user-agent': 'epj/1.0', accept: 'application/json' }
  const line = (target: typeof logger): void => {
    target.child({ reqId: randomUUID() }).info({ req: raw, tenant: 't001', api: 'persontjenesten', caller: undefined, status: 200, durationMs: 1.2 }, 'request completed')
  }
  row('request log line through a logger with the redaction backstop (before round 2)', time(() => { line(logger) }, 20_000))
  const writeLine = createRequestLines(logger)
  row('request log line as the broker writes it (createRequestLines: no redact paths)', time(() => {
    writeLine({ requestId: randomUUID(), request: raw, tenant: 't001', api: 'persontjenesten', status: 200, durationMs: 1.2 })
  }, 20_000), 'same allowlisted fields')
  row('maskPath (per request: log serializer, audit entry)', time(() => maskPath(rawTarget), 50_000))

  // Metrics as app.ts and forwarder.ts update them.
  const metrics = createMetrics({ withDefaults: false })
  row('metrics.requests.inc({ tenant, api, method, status })', time(index => { metrics.requests.inc({ tenant: `t${index % 100}`, api: 'persontjenesten', method: 'GET', status: String(200) }) }, 50_000))
  const counts = new Map<string, number>()
  row('the same count in a Map keyed by one string (to prom-client at scrape time)', time(index => {
    const key = `t${index % 100}\u0000persontjenesten\u0000GET\u0000200`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }, 50_000))
  row('metrics.upstreamDuration.observe({ api, status }, s)', time(() => { metrics.upstreamDuration.observe({ api: 'persontjenesten', status: '200' }, 0.0012) }, 50_000))

  // Client-abort wiring: an AbortController per request, whose signal undici listens to.
  row('AbortController + undici-style abort listener, added and removed', time(() => {
    const controller = new AbortController()
    const listener = (): void => {}
    controller.signal.addEventListener('abort', listener, { once: true })
    controller.signal.removeEventListener('abort', listener)
    return controller
  }, 50_000))
  row('EventEmitter as undici signal (once + removeListener)', time(() => {
    const emitter = new EventEmitter()
    const listener = (): void => {}
    emitter.once('abort', listener)
    emitter.removeListener('abort', listener)
    return emitter
  }, 50_000), 'undici accepts an EventEmitter that emits abort')

  // Target parsing and the upstream URL.
  row('parseProxyTarget', time(() => parseProxyTarget(rawTarget), 50_000))
  const target = parseProxyTarget(rawTarget)
  row('toUpstreamUrl (parses the base URL and the full URL)', time(() => toUpstreamUrl(baseUrl, target), 50_000))
  const base = new URL(baseUrl)
  row('one URL parse (what parsing each base URL once saves)', time(() => new URL(baseUrl), 50_000), `base ${base.host}`)

  // Header hygiene both ways.
  const callerHeaders = { host: '127.0.0.1:8480', 'user-agent': 'epj/1.0', accept: 'application/json', 'accept-encoding': 'gzip', connection: 'keep-alive' }
  row('toUpstreamHeaders (caller headers)', time(() => toUpstreamHeaders(callerHeaders), 50_000))
  const upstreamHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': '2691', date: new Date().toUTCString(), connection: 'keep-alive', 'keep-alive': 'timeout=65' }
  row('toCallerHeaders (upstream headers)', time(() => toCallerHeaders(upstreamHeaders), 50_000))

  // Token cache key, computed on every getToken.
  const request: TokenRequest = {
    clientId: 'bench-epj-supplier',
    key: { kid: 'x'.repeat(43) } as unknown as ClientKey,
    organization: { parent: '910000001' },
    scopes: ['nhn:hgd-persontjenesten-api/restricted-access'],
    dpopKey
  }
  row('toCacheKey (per getToken: array, sort, join)', time(() => toCacheKey(request), 50_000), 'could be computed once per tenant API')
  row('randomUUID (request id)', time(() => randomUUID(), 50_000))

  console.log('\n| step | µs per call | note |\n|---|---:|---|')
  for (const entry of rows) console.log(`| ${entry.step} | ${entry.us.toFixed(2)} | ${entry.note} |`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
