// One load run with autocannon (programmatic), plus exact latency percentiles from autocannon's per-response timings.

import autocannon from 'autocannon'
import { cpuSnapshot, foreignCores, processTreeCpuMs, waitForQuiet } from './cpu.ts'

export interface LoadOptions {
  /** Origin of the peer, e.g. http://127.0.0.1:1234. */
  readonly origin: string
  /** Paths the connections cycle through (one GET each). */
  readonly paths: readonly string[]
  readonly connections: number
  readonly seconds: number
  /** The proxy's process (and its children, e.g. nginx workers), whose CPU time per request is measured. */
  readonly peerPid?: number
}

export interface LoadResult {
  readonly connections: number
  readonly seconds: number
  /** 2xx responses per second over the run. */
  readonly rps: number
  /** Exact percentiles in ms from per-response timings (autocannon's own histogram has whole-ms resolution). */
  readonly p50Ms: number
  readonly p99Ms: number
  /** autocannon's reported percentiles (whole ms), for reference. */
  readonly autocannonP50Ms: number
  readonly autocannonP99Ms: number
  /** Mean latency from throughput (Little's law, closed loop): connections / req/s. */
  readonly meanFromRpsMs: number
  readonly ok: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  /** Cores used by programs outside the benchmark during the run (NaN when unknown). */
  readonly foreignCores: number
  /** CPU time (user + system, 10 ms resolution) the proxy process used per response, µs; NaN without peerPid. */
  readonly peerCpuUsPerRequest: number
}

/** How long to wait for a quiet machine before a measured run, and what counts as quiet. */
export const quietPolicy = {
  thresholdCores: Number(process.env.BENCH_QUIET_CORES ?? '0.15'),
  maxWaitMs: Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? '180') * 1000
}

/**
 * Waits for a quiet machine, warms up for `warmupSeconds`, then measures `seconds`; a run during which other
 * programs used more than twice the quiet threshold is repeated (at most BENCH_RETRIES times, default 2).
 */
export async function measureLoad (options: LoadOptions & { readonly warmupSeconds: number }): Promise<LoadResult> {
  const retries = Number(process.env.BENCH_RETRIES ?? '2')
  for (let attempt = 0; ; attempt++) {
    const quiet = await waitForQuiet(quietPolicy.thresholdCores, quietPolicy.maxWaitMs)
    if (quiet.foreign >= quietPolicy.thresholdCores) {
      console.log(`  (other programs still use ${quiet.foreign.toFixed(2)} cores after waiting ${(quiet.waitedMs / 1000).toFixed(0)} s; measuring anyway)`)
    }
    if (options.warmupSeconds > 0) await runLoad({ ...options, seconds: options.warmupSeconds })
    const result = await runLoad(options)
    if (!(result.foreignCores > 2 * quietPolicy.thresholdCores) || attempt >= retries) return result
    console.log(`  (other programs used ${result.foreignCores.toFixed(2)} cores during the run; measuring again)`)
  }
}

/** Runs `seconds` of load; latencies of 2xx responses only. */
export async function runLoad (options: LoadOptions): Promise<LoadResult> {
  let latencies = new Float64Array(1 << 16)
  let count = 0
  const instance = autocannon({
    url: options.origin,
    connections: options.connections,
    duration: options.seconds,
    pipelining: 1,
    timeout: 10,
    requests: options.paths.map(path => ({ method: 'GET', path }))
  })
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    if (statusCode < 200 || statusCode >= 300) return
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2)
      grown.set(latencies)
      latencies = grown
    }
    latencies[count++] = responseTimeMs
  })
  const before = cpuSnapshot()
  const peerCpuBefore = options.peerPid === undefined ? Number.NaN : processTreeCpuMs(options.peerPid)
  const result = await instance
  const foreign = foreignCores(before, cpuSnapshot())
  const peerCpuMs = options.peerPid === undefined ? Number.NaN : processTreeCpuMs(options.peerPid) - peerCpuBefore
  const sorted = latencies.subarray(0, count).sort()
  const rps = count / result.duration
  return {
    connections: options.connections,
    seconds: result.duration,
    rps,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    autocannonP50Ms: result.latency.p50,
    autocannonP99Ms: result.latency.p99,
    meanFromRpsMs: rps > 0 ? options.connections / rps * 1000 : Number.NaN,
    ok: count,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    foreignCores: foreign,
    peerCpuUsPerRequest: count > 0 ? peerCpuMs * 1000 / count : Number.NaN
  }
}

function percentile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[index] ?? Number.NaN
}
