// npm run bench: the same GET load through direct, nginx, @fastify/http-proxy and helseid-broker, at 1, 16 and 64
// connections; one table, the three targets of issue 5 with PASS/FAIL. Everything runs on 127.0.0.1, ports ephemeral.
//
// Environment: BENCH_SECONDS (default 5) per measured run, BENCH_WARMUP_SECONDS (default 1) before each,
// BENCH_CONNECTIONS (default 1,16,64), BENCH_PEERS (default direct,nginx,fastify-proxy,helseid-broker; also
// helseid-broker-warn = the broker logging at warn, without request lines; node-request and node-stream = plain
// node:http + undici proxies with a static header, the Node floor), BENCH_TENANTS (default 100),
// BENCH_BROKER_EXEC_ARGV (Node options for the broker's process, e.g. "--max-semi-space-size=2"),
// BENCH_NGINX (the nginx binary, or "off"; default /usr/sbin/nginx, else nginx on PATH), BENCH_TARGET_ROUNDS (default 5:
// rounds of the alternated target check, 0 to skip it).

import { join } from 'node:path'
import { brokerConfig, brokerExecArgv, brokerPaths, startBenchAuthority, tenantNames } from './lib/broker-setup.ts'
import { expectPerson, forEachLimited } from './lib/check.ts'
import { startPeer, stopEverything, type PeerChild } from './lib/children.ts'
import { personBody, personPath, staticAuthorization } from './lib/fixtures.ts'
import { measureLoad, quietPolicy, type LoadResult } from './lib/load.ts'
import { describeMachine } from './lib/machine.ts'
import { findNginx, nginxVersion, startNginx } from './lib/nginx.ts'
import { mb, readRss, resetPeakRss, sampleRss } from './lib/proc.ts'

const seconds = positiveNumber('BENCH_SECONDS', 5)
const warmupSeconds = positiveNumber('BENCH_WARMUP_SECONDS', 1, true)
const connectionCounts = (process.env.BENCH_CONNECTIONS ?? '1,16,64').split(',').map(Number).filter(n => Number.isInteger(n) && n > 0)
const peerNames = (process.env.BENCH_PEERS ?? 'direct,nginx,fastify-proxy,helseid-broker').split(',').map(name => name.trim()).filter(name => name !== '')
const tenantCount = positiveNumber('BENCH_TENANTS', 100)
const targetRounds = positiveNumber('BENCH_TARGET_ROUNDS', 5, true)
/** A run during which other programs used more than this many cores is flagged. */
const noisyCores = 0.25

interface PeerRun {
  readonly peer: string
  readonly results: ReadonlyArray<LoadResult & { readonly peakRssBytes?: number }>
  /** Child-process peers: peak RSS during the measured runs (sampled VmRSS, and VmHWM reset after warm-up). */
  readonly peakRssBytes?: number
  readonly idleRssBytes?: number
  readonly note?: string
}

async function main (): Promise<void> {
  const header = describeMachine([
    `load: autocannon in this process, GET ${personBody.length}-byte person JSON, ${connectionCounts.join('/')} connections, ` +
      `${seconds} s measured after ${warmupSeconds} s warm-up per run; each peer and the fake upstream in its own process`,
    `each run waits (up to ${quietPolicy.maxWaitMs / 1000} s) until other programs use < ${quietPolicy.thresholdCores} cores`
  ])
  for (const line of header) console.log(line)
  const runs: PeerRun[] = []
  const skipped: string[] = []
  let alternated: AlternatedRound[] = []
  const bench = await startBenchAuthority()
  try {
    const upstream = await startPeer({ kind: 'upstream' })
    await expectPerson(upstream.url, personPath)
    console.log(`fake upstream ${upstream.url} (pid ${upstream.pid}); authority ${bench.authority.issuer}`)

    for (const peer of peerNames) {
      switch (peer) {
        case 'direct':
          runs.push({ peer, results: await loadAll(peer, upstream.url, [personPath], upstream.pid) })
          break
        case 'nginx': {
          const binary = findNginx()
          if (binary === undefined) {
            const chosen = process.env.BENCH_NGINX
            const reason = chosen === 'off' ? 'BENCH_NGINX=off' : chosen !== undefined && chosen !== '' ? `BENCH_NGINX=${chosen} is not executable` : 'not installed (neither /usr/sbin/nginx nor nginx on PATH)'
            skipped.push(`nginx: ${reason}; row skipped`)
            break
          }
          const nginx = await startNginx(binary, join(bench.dir, 'nginx'), upstream.url, staticAuthorization)
          // Should this process be killed outright, the upstream child stops nginx when it notices.
          upstream.watch(nginx.pid)
          try {
            await expectPerson(nginx.url, personPath)
            runs.push({ peer, results: await loadAll(peer, nginx.url, [personPath], nginx.pid), note: `${await nginxVersion(binary)}, 1 worker, access_log off` })
          } finally {
            await nginx.stop()
            upstream.unwatch(nginx.pid)
          }
          break
        }
        case 'fastify-proxy': {
          const child = await startPeer({ kind: 'fastify-proxy', upstream: upstream.url, authorization: staticAuthorization })
          try {
            runs.push(await loadChild(peer, child, [personPath]))
          } finally {
            await child.stop()
          }
          break
        }
        case 'node-request':
        case 'node-stream': {
          const child = await startPeer({ kind: 'node-proxy', upstream: upstream.url, authorization: staticAuthorization, client: peer === 'node-request' ? 'request' : 'stream' })
          try {
            runs.push({ ...await loadChild(peer, child, [personPath]), note: `plain node:http + undici ${peer === 'node-request' ? 'request() piped to the response' : 'stream() into the response'}, static header, no framework` })
          } finally {
            await child.stop()
          }
          break
        }
        case 'helseid-broker':
        case 'helseid-broker-warn': {
          const tenants = tenantNames(tenantCount)
          const config = brokerConfig({
            issuer: bench.authority.issuer,
            upstream: upstream.url,
            keyFile: bench.keyFile,
            tenants,
            logLevel: peer === 'helseid-broker' ? 'info' : 'warn'
          })
          const issuedBefore = bench.authority.issuedTokens.length
          const execArgv = brokerExecArgv()
          const child = await startPeer({ kind: 'broker', config, source: join(bench.dir, 'helseid-broker.yaml') }, { execArgv })
          if (execArgv.length > 0) console.log(`  broker node options: ${execArgv.join(' ')}`)
          try {
            for (const note of child.notes) console.log(`  note: ${note}`)
            const paths = brokerPaths(tenants)
            // Warm: one call per tenant fetches and caches its token (nonce handshake included).
            await forEachLimited(paths, 10, async path => { await expectPerson(child.url, path) })
            const issued = bench.authority.issuedTokens.length - issuedBefore
            console.log(`  ${peer}: ${tenants.length} tenants warm, ${issued} token(s) issued`)
            const run = await loadChild(peer, child, paths)
            runs.push({ ...run, note: `${tenants.length} tenants, requests spread over all of them, log level ${peer === 'helseid-broker' ? 'info (one JSON line per request to /dev/null)' : 'warn'}${execArgv.length > 0 ? `, node ${execArgv.join(' ')}` : ''}.` })
          } finally {
            await child.stop()
          }
          break
        }
        default:
          throw new Error(`unknown peer ${peer} in BENCH_PEERS`)
      }
    }
    alternated = await alternatedTargetCheck(upstream, bench)
  } finally {
    await stopEverything()
    await bench.close()
  }
  console.log('')
  for (const line of report(runs, skipped, alternated)) console.log(line)
}

/** One round of the alternated target check: the peers loaded one after the other, in turns. */
interface AlternatedRound {
  readonly fastify16: LoadResult
  readonly broker16: LoadResult
  readonly direct1: LoadResult
  readonly broker1: LoadResult
}

/**
 * The targets compare peers measured minutes apart, and this VM's speed drifts over minutes. So the
 * figures the targets are judged on come from rounds in which @fastify/http-proxy and the broker (16
 * connections), and direct and the broker (1 connection), are loaded in turns, both running all along;
 * the order flips every round. The medians of the rounds decide.
 */
async function alternatedTargetCheck (upstream: PeerChild, bench: Awaited<ReturnType<typeof startBenchAuthority>>): Promise<AlternatedRound[]> {
  if (targetRounds === 0 || !peerNames.includes('helseid-broker') || !peerNames.includes('fastify-proxy')) return []
  console.log(`alternated target check: ${targetRounds} rounds`)
  const tenants = tenantNames(tenantCount)
  const fastify = await startPeer({ kind: 'fastify-proxy', upstream: upstream.url, authorization: staticAuthorization })
  const broker = await startPeer({
    kind: 'broker',
    config: brokerConfig({ issuer: bench.authority.issuer, upstream: upstream.url, keyFile: bench.keyFile, tenants, logLevel: 'info' }),
    source: join(bench.dir, 'helseid-broker-alternated.yaml')
  }, { execArgv: brokerExecArgv() })
  try {
    const paths = brokerPaths(tenants)
    await forEachLimited(paths, 10, async path => { await expectPerson(broker.url, path) })
    await expectPerson(fastify.url, personPath)
    const load = async (peer: string, origin: string, peerPaths: readonly string[], pid: number, connections: number): Promise<LoadResult> => {
      const result = await measureLoad({ origin, paths: peerPaths, connections, seconds, warmupSeconds, peerPid: pid })
      console.log(`  ${peer.padEnd(20)} ${String(connections).padStart(3)} conns: ${result.rps.toFixed(0).padStart(6)} req/s, p50 ${result.p50Ms.toFixed(3)} ms, ${result.peerCpuUsPerRequest.toFixed(0)} µs CPU/req, other programs ${result.foreignCores.toFixed(2)} cores`)
      return result
    }
    const rounds: AlternatedRound[] = []
    for (let round = 0; round < targetRounds; round++) {
      const isBrokerFirst = round % 2 === 1
      const fastifyRun = async (): Promise<LoadResult> => await load('fastify-proxy', fastify.url, [personPath], fastify.pid, 16)
      const brokerRun = async (connections: number): Promise<LoadResult> => await load('helseid-broker', broker.url, paths, broker.pid, connections)
      const directRun = async (): Promise<LoadResult> => await load('direct', upstream.url, [personPath], upstream.pid, 1)
      const broker16 = isBrokerFirst ? await brokerRun(16) : undefined
      const fastify16 = await fastifyRun()
      const broker16b = broker16 ?? await brokerRun(16)
      const broker1 = isBrokerFirst ? await brokerRun(1) : undefined
      const direct1 = await directRun()
      const broker1b = broker1 ?? await brokerRun(1)
      rounds.push({ fastify16, broker16: broker16b, direct1, broker1: broker1b })
    }
    return rounds
  } finally {
    await broker.stop()
    await fastify.stop()
  }
}

function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] ?? Number.NaN : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
}

/** Warm-up plus measured run at every connection count; with `rssPid`, the peak RSS of that process during each run. */
async function loadAll (peer: string, origin: string, paths: readonly string[], peerPid: number, rssPid?: number): Promise<Array<LoadResult & { readonly peakRssBytes?: number }>> {
  const results: Array<LoadResult & { readonly peakRssBytes?: number }> = []
  for (const connections of connectionCounts) {
    if (rssPid !== undefined) resetPeakRss(rssPid)
    const sampler = rssPid === undefined ? undefined : sampleRss(rssPid)
    const result = await measureLoad({ origin, paths, connections, seconds, warmupSeconds, peerPid })
    const memory = sampler?.stop()
    const peakRssBytes = memory === undefined ? undefined : Math.max(memory.maxRssBytes, Number.isFinite(memory.hwmBytes) ? memory.hwmBytes : 0)
    console.log(`  ${peer.padEnd(20)} ${String(connections).padStart(3)} conns: ${result.rps.toFixed(0).padStart(6)} req/s, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms, ${result.peerCpuUsPerRequest.toFixed(0)} µs CPU/req` +
      (result.non2xx + result.errors + result.timeouts > 0 ? `, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts` : '') +
      (peakRssBytes === undefined ? '' : `, peak RSS ${mb(peakRssBytes)} MB`) +
      `, other programs ${result.foreignCores.toFixed(2)} cores`)
    results.push(peakRssBytes === undefined ? result : { ...result, peakRssBytes })
  }
  return results
}

/** Load on a child-process peer while sampling its memory (peak RSS per run: VmRSS sampled, and VmHWM reset before each run). */
async function loadChild (peer: string, child: PeerChild, paths: readonly string[]): Promise<PeerRun> {
  await expectPerson(child.url, paths[0] ?? personPath)
  const idleRssBytes = readRss(child.pid)?.rssBytes ?? Number.NaN
  const results = await loadAll(peer, child.url, paths, child.pid, child.pid)
  return { peer, results, idleRssBytes, peakRssBytes: Math.max(...results.map(result => result.peakRssBytes ?? 0)) }
}

function report (runs: readonly PeerRun[], skipped: readonly string[], alternated: readonly AlternatedRound[]): string[] {
  const find = (peer: string, connections: number): LoadResult | undefined =>
    runs.find(run => run.peer === peer)?.results.find(result => result.connections === connections)
  const lines: string[] = []
  const columns = ['peer', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', '+p50 vs direct', '+mean vs direct', 'CPU µs/req', '÷ fastify-proxy', '÷ nginx', 'non-2xx/err', 'other CPU']
  lines.push(`| ${columns.join(' | ')} |`, `|${columns.map((_c, i) => i < 1 ? '---' : '---:').join('|')}|`)
  for (const run of runs) {
    for (const result of run.results) {
      const direct = find('direct', result.connections)
      const fastify = find('fastify-proxy', result.connections)
      const nginx = find('nginx', result.connections)
      lines.push(`| ${[
        run.peer,
        result.connections,
        result.rps.toFixed(0),
        result.p50Ms.toFixed(3),
        result.p99Ms.toFixed(3),
        result.meanFromRpsMs.toFixed(3),
        direct === undefined || run.peer === 'direct' ? '–' : signed(result.p50Ms - direct.p50Ms),
        direct === undefined || run.peer === 'direct' ? '–' : signed(result.meanFromRpsMs - direct.meanFromRpsMs),
        result.peerCpuUsPerRequest.toFixed(0),
        fastify === undefined ? '–' : (result.rps / fastify.rps).toFixed(2),
        nginx === undefined ? '–' : (result.rps / nginx.rps).toFixed(2),
        `${result.non2xx}/${result.errors + result.timeouts}`,
        `${result.foreignCores.toFixed(2)}${result.foreignCores > noisyCores ? ' (!)' : ''}`
      ].join(' | ')} |`)
    }
  }
  lines.push('', `other CPU: cores used by programs outside the benchmark during the run; (!) above ${noisyCores} means the row is skewed by them.`)
  lines.push('CPU µs/req: user + system CPU time of the peer\'s process(es) per response (for direct: the fake upstream alone; otherwise the proxy without the upstream).')
  lines.push('p50/p99: exact, from autocannon\'s per-response hrtime (its own histogram rounds to whole ms); mean = connections ÷ req/s (Little\'s law; at 1 connection 1 ÷ req/s).')
  for (const run of runs) {
    const memory = run.peakRssBytes === undefined
      ? undefined
      : `RSS idle ${mb(run.idleRssBytes ?? Number.NaN)} MB, peak under load ${mb(run.peakRssBytes)} MB (${run.results.map(result => `${mb(result.peakRssBytes ?? Number.NaN)} at ${result.connections}`).join(', ')} connections).`
    const parts = [run.note, memory].filter(part => part !== undefined)
    if (parts.length > 0) lines.push(`${run.peer}: ${parts.join(' ')}`)
  }
  for (const line of skipped) lines.push(line)

  if (alternated.length > 0) {
    lines.push('', `Alternated target check (${alternated.length} rounds, peers loaded in turns, order flipped every round):`, '')
    lines.push('| round | fastify-proxy 16 req/s | broker 16 req/s | ratio | fastify-proxy / broker CPU µs/req | direct 1 p50 ms | broker 1 p50 ms | +p50 ms |', '|---:|---:|---:|---:|---:|---:|---:|---:|')
    alternated.forEach((round, index) => {
      lines.push(`| ${index + 1} | ${round.fastify16.rps.toFixed(0)} | ${round.broker16.rps.toFixed(0)} | ${(round.broker16.rps / round.fastify16.rps).toFixed(2)} | ${round.fastify16.peerCpuUsPerRequest.toFixed(0)} / ${round.broker16.peerCpuUsPerRequest.toFixed(0)} | ${round.direct1.p50Ms.toFixed(3)} | ${round.broker1.p50Ms.toFixed(3)} | ${signed(round.broker1.p50Ms - round.direct1.p50Ms)} |`)
    })
  }
  lines.push('', 'Targets (issue 5):')
  const broker = runs.find(run => run.peer === 'helseid-broker')
  if (alternated.length > 0) {
    const ratio = median(alternated.map(round => round.broker16.rps / round.fastify16.rps))
    lines.push(`  ${verdict(ratio >= 0.8)} throughput at 16 connections ≥ 0.8 × @fastify/http-proxy: median ratio ${ratio.toFixed(2)} × over ${alternated.length} alternated rounds`)
    const added = median(alternated.map(round => round.broker1.p50Ms - round.direct1.p50Ms))
    const addedMean = median(alternated.map(round => round.broker1.meanFromRpsMs - round.direct1.meanFromRpsMs))
    lines.push(`  ${verdict(added <= 0.3)} added p50 latency at 1 connection ≤ 0.3 ms: median ${added.toFixed(3)} ms over ${alternated.length} alternated rounds (exact per-response p50; the mean, from throughput, adds ${addedMean.toFixed(3)} ms)`)
  } else {
    const broker16 = find('helseid-broker', 16)
    const fastify16 = find('fastify-proxy', 16)
    if (broker16 !== undefined && fastify16 !== undefined) {
      const ratio = broker16.rps / fastify16.rps
      lines.push(`  ${verdict(ratio >= 0.8)} throughput at 16 connections ≥ 0.8 × @fastify/http-proxy: ${broker16.rps.toFixed(0)} vs ${fastify16.rps.toFixed(0)} req/s = ${ratio.toFixed(2)} × (one run each)`)
    } else lines.push('  n/a  throughput target: needs helseid-broker and fastify-proxy at 16 connections')
    const broker1 = find('helseid-broker', 1)
    const direct1 = find('direct', 1)
    if (broker1 !== undefined && direct1 !== undefined) {
      const added = broker1.p50Ms - direct1.p50Ms
      lines.push(`  ${verdict(added <= 0.3)} added p50 latency at 1 connection ≤ 0.3 ms: ${added.toFixed(3)} ms (exact per-response p50, one run each; ` +
        `the mean, from throughput, adds ${(broker1.meanFromRpsMs - direct1.meanFromRpsMs).toFixed(3)} ms)`)
    } else lines.push('  n/a  latency target: needs helseid-broker and direct at 1 connection')
  }
  if (broker?.peakRssBytes !== undefined) {
    const perRun = broker.results.map(result => `${mb(result.peakRssBytes ?? Number.NaN)} MB at ${result.connections}`).join(', ')
    lines.push(`  ${verdict(broker.peakRssBytes <= 100 * 1024 * 1024)} RSS ≤ 100 MB under load with ${tenantCount} tenants: peak ${mb(broker.peakRssBytes)} MB (${perRun} connections; idle, warm: ${mb(broker.idleRssBytes ?? Number.NaN)} MB)`)
  } else lines.push('  n/a  memory target: needs helseid-broker')
  return lines
}

function verdict (isPass: boolean): string {
  return isPass ? 'PASS' : 'FAIL'
}

function signed (ms: number): string {
  return `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}`
}

function positiveNumber (name: string, fallback: number, isZeroAllowed = false): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !isZeroAllowed)) throw new Error(`${name} must be a ${isZeroAllowed ? 'non-negative' : 'positive'} number, got ${raw}`)
  return value
}

main().catch(async (error: unknown) => {
  console.error(error)
  await stopEverything()
  process.exitCode = 1
})
