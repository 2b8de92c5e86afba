// npm run bench:scale: the broker at scale. (1) 1,000 concurrent cold requests across 50 tenants → token requests at
// the authority (exactly 50 issued and one DPoP nonce handshake expected); (2) throughput and memory at 1, 10 and 100
// tenants, and RSS with the tenants configured and warm; (3) a 50 MB response streamed through the broker, read fast and
// read slowly, with its peak RSS delta. Everything on 127.0.0.1, ports ephemeral, each broker and the fake upstream in a
// child process.
//
// Environment: BENCH_SECONDS (default 5), BENCH_WARMUP_SECONDS (default 1), BENCH_SCALE_TENANTS (default 1,10,100),
// BENCH_STREAM_MB (default 50), BENCH_BROKER_EXEC_ARGV (Node options for the broker's process).

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { brokerConfig, brokerExecArgv, brokerPaths, startBenchAuthority, tenantNames, type BenchAuthority } from './lib/broker-setup.ts'
import { expectPerson, forEachLimited } from './lib/check.ts'
import { startPeer, stopEverything, type PeerChild } from './lib/children.ts'
import { bigPath, personBody, staticAuthorization } from './lib/fixtures.ts'
import { measureLoad } from './lib/load.ts'
import { describeMachine } from './lib/machine.ts'
import { mb, readRss, resetPeakRss, sampleRss } from './lib/proc.ts'

const seconds = Number(process.env.BENCH_SECONDS ?? '5')
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? '1')
const tenantCounts = (process.env.BENCH_SCALE_TENANTS ?? '1,10,100').split(',').map(Number).filter(n => Number.isInteger(n) && n > 0)
const streamMb = Number(process.env.BENCH_STREAM_MB ?? '50')

async function main (): Promise<void> {
  for (const line of describeMachine()) console.log(line)
  const lines: string[] = []
  const bench = await startBenchAuthority()
  try {
    const upstream = await startPeer({ kind: 'upstream' })
    console.log(`fake upstream ${upstream.url}; authority ${bench.authority.issuer}`)
    lines.push(...await coldStampede(bench, upstream.url, 50, 1000))
    lines.push(...await tenantSweep(bench, upstream.url))
    lines.push(...await streaming(bench, upstream.url))
  } finally {
    await stopEverything()
    await bench.close()
  }
  console.log('')
  for (const line of lines) console.log(line)
}

async function startBrokerChild (bench: BenchAuthority, upstream: string, tenants: readonly string[]): Promise<PeerChild> {
  const config = brokerConfig({ issuer: bench.authority.issuer, upstream, keyFile: bench.keyFile, tenants })
  const child = await startPeer({ kind: 'broker', config, source: join(bench.dir, 'helseid-broker.yaml') }, { execArgv: brokerExecArgv() })
  for (const note of child.notes) console.log(`  note: ${note}`)
  return child
}

/**
 * `total` requests at once, spread evenly over `tenantCount` cold tenants: one token per tenant must be issued, and the
 * broker must do the DPoP nonce handshake once per issuer (one here), not once per tenant.
 */
async function coldStampede (bench: BenchAuthority, upstream: string, tenantCount: number, total: number): Promise<string[]> {
  const tenants = tenantNames(tenantCount)
  // Counted from before the broker starts: its key-expiry check asks for a token at start, racing the stampede, and
  // whichever of them goes first does the handshake; the count over the broker's whole cold start does not depend on that.
  const requestsBefore = bench.authority.tokenRequests.length
  const child = await startBrokerChild(bench, upstream, tenants)
  const paths = brokerPaths(tenants)
  const agent = new Agent({ connections: total, pipelining: 1 })
  try {
    const started = performance.now()
    const statuses = await Promise.all(Array.from({ length: total }, async (_unused, index) => {
      const response = await request(`${child.url}${paths[index % paths.length] ?? ''}`, { dispatcher: agent })
      const body = Buffer.from(await response.body.arrayBuffer())
      return response.statusCode === 200 && body.equals(personBody) ? 200 : response.statusCode
    }))
    const elapsedMs = performance.now() - started
    const tokenRequests = bench.authority.tokenRequests.slice(requestsBefore)
    const outcomes = new Map<string, number>()
    for (const entry of tokenRequests) outcomes.set(entry.outcome, (outcomes.get(entry.outcome) ?? 0) + 1)
    const issued = outcomes.get('issued') ?? 0
    const handshakes = outcomes.get('use_dpop_nonce') ?? 0
    const issuers = 1 // the one local authority
    const ok = statuses.filter(status => status === 200).length
    const peak = readRss(child.pid)
    return [
      `Cold stampede: ${total} concurrent requests (one connection each) over ${tenantCount} tenants with empty token caches`,
      `  ${ok}/${total} answered 200 with the person body in ${elapsedMs.toFixed(0)} ms; token endpoint calls since the broker started: ${tokenRequests.length} ` +
        `(${[...outcomes].map(([outcome, count]) => `${outcome} ${count}`).join(', ')}); broker peak RSS ${mb(peak?.hwmBytes ?? Number.NaN)} MB`,
      `  ${issued === tenantCount && ok === total ? 'PASS' : 'FAIL'} exactly ${tenantCount} tokens issued (one per tenant; concurrent misses share one fetch): ${issued}`,
      `  ${handshakes === issuers ? 'PASS' : 'FAIL'} exactly ${issuers} DPoP nonce handshake (use_dpop_nonce answers; one per issuer: the other cold fetches wait for its nonce): ${handshakes}`,
      ''
    ]
  } finally {
    await agent.close()
    await child.stop()
  }
}

/** Throughput and memory at 16 connections with requests spread over N warm tenants. */
async function tenantSweep (bench: BenchAuthority, upstream: string): Promise<string[]> {
  const lines = [
    `Tenants: 16 connections, ${seconds} s after ${warmupSeconds} s warm-up, requests spread over all tenants (log level info)`,
    '| tenants | req/s | p50 ms | p99 ms | broker CPU µs/req | RSS after start MB | RSS warm, idle MB | peak RSS under load MB | other CPU |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const count of tenantCounts) {
    const tenants = tenantNames(count)
    const child = await startBrokerChild(bench, upstream, tenants)
    try {
      const startRss = readRss(child.pid)?.rssBytes ?? Number.NaN
      const paths = brokerPaths(tenants)
      await forEachLimited(paths, 10, async path => { await expectPerson(child.url, path) })
      await sleep(500)
      const warmRss = readRss(child.pid)?.rssBytes ?? Number.NaN
      resetPeakRss(child.pid)
      const sampler = sampleRss(child.pid)
      const result = await measureLoad({ origin: child.url, paths, connections: 16, seconds, warmupSeconds, peerPid: child.pid })
      const { maxRssBytes, hwmBytes } = sampler.stop()
      const peak = Math.max(maxRssBytes, Number.isFinite(hwmBytes) ? hwmBytes : 0)
      console.log(`  ${count} tenants: ${result.rps.toFixed(0)} req/s, peak RSS ${mb(peak)} MB`)
      lines.push(`| ${count} | ${result.rps.toFixed(0)} | ${result.p50Ms.toFixed(3)} | ${result.p99Ms.toFixed(3)} | ${result.peerCpuUsPerRequest.toFixed(0)} | ${mb(startRss)} | ${mb(warmRss)} | ${mb(peak)} | ${result.foreignCores.toFixed(2)} |`)
      if (result.non2xx + result.errors + result.timeouts > 0) lines.push(`  (${count} tenants: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts)`)
    } finally {
      await child.stop()
    }
  }
  lines.push('')
  return lines
}

/**
 * A large response through the broker, read as fast as possible (at two sizes: a bounded RSS delta that does not grow
 * with the body means streaming, not buffering) and then slowly (the broker must hold the upstream back);
 * @fastify/http-proxy streams the same body for comparison.
 */
async function streaming (bench: BenchAuthority, upstream: string): Promise<string[]> {
  const tenants = tenantNames(1)
  const lines = [`Streaming: ${streamMb} MiB and ${4 * streamMb} MiB responses (the upstream writes 64 KiB chunks with backpressure); RSS sampled every 20 ms`]
  const broker = await startBrokerChild(bench, upstream, tenants)
  try {
    await expectPerson(broker.url, brokerPaths(tenants)[0] ?? '')
    for (const [mode, size] of [['fast', streamMb], ['fast', 4 * streamMb], ['slow', streamMb]] as const) {
      lines.push(`  helseid-broker, ${await streamOnce(broker, brokerPaths(tenants, `${bigPath}?mb=${size}`)[0] ?? '', mode, size)}`)
    }
  } finally {
    await broker.stop()
  }
  const fastify = await startPeer({ kind: 'fastify-proxy', upstream, authorization: staticAuthorization })
  try {
    lines.push(`  @fastify/http-proxy, ${await streamOnce(fastify, `${bigPath}?mb=${streamMb}`, 'fast', streamMb)}`)
  } finally {
    await fastify.stop()
  }
  lines.push('')
  return lines
}

/** GETs `path` through `child` and reads the body fast or at ~25 MB/s; returns a line with throughput and the RSS delta. */
async function streamOnce (child: PeerChild, path: string, mode: 'fast' | 'slow', sizeMb: number): Promise<string> {
  await sleep(500)
  const baseline = readRss(child.pid)?.rssBytes ?? Number.NaN
  resetPeakRss(child.pid)
  const sampler = sampleRss(child.pid, 20)
  const started = performance.now()
  const response = await request(`${child.url}${path}`)
  let bytes = 0
  // slow: ~25 MB/s, about a tenth of what loopback gives, so that the proxy has to hold back the upstream
  const slowBytesPerMs = 25 * 1024 * 1024 / 1000
  for await (const chunk of response.body) {
    bytes += (chunk as Buffer).length
    if (mode === 'slow') {
      const dueMs = bytes / slowBytesPerMs - (performance.now() - started)
      if (dueMs > 1) await sleep(dueMs)
    }
  }
  const elapsedMs = performance.now() - started
  const { maxRssBytes, hwmBytes } = sampler.stop()
  const peak = Math.max(maxRssBytes, Number.isFinite(hwmBytes) ? hwmBytes : 0)
  const complete = response.statusCode === 200 && bytes === sizeMb * 1024 * 1024
  return `${sizeMb} MiB read ${mode === 'fast' ? 'at full speed' : 'at ~25 MB/s'}: ${complete ? 'complete' : `INCOMPLETE (status ${response.statusCode}, ${bytes} bytes)`}, ` +
    `${(bytes / 1024 / 1024 / (elapsedMs / 1000)).toFixed(0)} MB/s; RSS before ${mb(baseline)} MB, peak ${mb(peak)} MB, ` +
    `delta ${mb(peak - baseline)} MB (${((peak - baseline) / (sizeMb * 1024 * 1024) * 100).toFixed(1)} % of the body)`
}

main().catch(async (error: unknown) => {
  console.error(error)
  await stopEverything()
  process.exitCode = 1
})
