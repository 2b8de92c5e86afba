// node dist/bench/profile.js: a CPU profile (node --cpu-prof) of the broker under load (16 connections unless
// BENCH_PROFILE_CONNECTIONS says otherwise), and a summary
// of where its time goes (self time, inclusive time, by package) during the measured window only.
//
// Environment: BENCH_PROFILE_SECONDS (default 10), BENCH_PROFILE_PEER (helseid-broker | fastify-proxy), BENCH_TENANTS
// (default 100), BENCH_PROFILE_DIR (where the .cpuprofile is kept; default a new directory under the system temp dir).

import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerConfig, brokerPaths, startBenchAuthority, tenantNames } from './lib/broker-setup.ts'
import { expectPerson, forEachLimited } from './lib/check.ts'
import { startPeer, stopEverything } from './lib/children.ts'
import { summariseProfile, type Ranked } from './lib/cpuprofile.ts'
import { personPath, staticAuthorization } from './lib/fixtures.ts'
import { measureLoad, quietPolicy, runLoad } from './lib/load.ts'
import { waitForQuiet } from './lib/cpu.ts'
import { describeMachine } from './lib/machine.ts'

const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? '10')
const peer = process.env.BENCH_PROFILE_PEER ?? 'helseid-broker'
const tenantCount = Number(process.env.BENCH_TENANTS ?? '100')
const connections = Number(process.env.BENCH_PROFILE_CONNECTIONS ?? '16')
const top = 30

async function main (): Promise<void> {
  for (const line of describeMachine()) console.log(line)
  const dir = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'helseid-broker-profile-'))
  const bench = await startBenchAuthority()
  let window: { fromUs: number, toUs: number } | undefined
  let rps = 0
  try {
    const upstream = await startPeer({ kind: 'upstream' })
    const tenants = tenantNames(tenantCount)
    const isBroker = peer === 'helseid-broker'
    const execArgv = ['--cpu-prof', '--cpu-prof-dir', dir]
    const child = isBroker
      ? await startPeer({
        kind: 'broker',
        config: brokerConfig({ issuer: bench.authority.issuer, upstream: upstream.url, keyFile: bench.keyFile, tenants }),
        source: join(bench.dir, 'helseid-broker.yaml')
      }, { execArgv })
      : await startPeer({ kind: 'fastify-proxy', upstream: upstream.url, authorization: staticAuthorization }, { execArgv })
    const paths = isBroker ? brokerPaths(tenants) : [personPath]
    await forEachLimited(paths, 10, async path => { await expectPerson(child.url, path) })
    // Warm-up (JIT) outside the window, then the measured window.
    await measureLoad({ origin: child.url, paths, connections, seconds: 2, warmupSeconds: 0 })
    await waitForQuiet(quietPolicy.thresholdCores, quietPolicy.maxWaitMs)
    const from = await child.mark()
    const result = await runLoad({ origin: child.url, paths, connections, seconds, peerPid: child.pid })
    const to = await child.mark()
    window = { fromUs: from.monotonicUs, toUs: to.monotonicUs }
    rps = result.rps
    console.log(`${peer}: ${result.rps.toFixed(0)} req/s at ${connections} connection(s) under the profiler, ${result.peerCpuUsPerRequest.toFixed(0)} µs CPU per request (process total, all threads; other programs ${result.foreignCores.toFixed(2)} cores)`)
    await child.stop()
  } finally {
    await stopEverything()
    await bench.close()
  }
  const file = readdirSync(dir).filter(name => name.endsWith('.cpuprofile')).map(name => join(dir, name)).at(-1)
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`)
  const summary = summariseProfile(file, window?.fromUs, window?.toUs)
  // The measured window and request count, for comparing profiles later (bench/lib/cpuprofile.ts).
  writeFileSync(`${file}.window.json`, JSON.stringify({ peer, ...window, requests: Math.round(rps * seconds), seconds }))
  console.log(`\nprofile: ${file}`)
  console.log(`window: ${summary.windowMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms busy (${(summary.busyMs / summary.windowMs * 100).toFixed(0)} % of one core); ` +
    `${rps > 0 ? `${(summary.busyMs * 1000 / (rps * seconds)).toFixed(1)} µs sampled main-thread time per request` : ''}`)
  print('By package / area (self time, share of busy time)', summary.categories.slice(0, 15), false)
  print(`Top ${top} functions by self time`, summary.self.slice(0, top), true)
  print('Broker functions by inclusive time (self + callees)', summary.inclusive.filter(entry => entry.category === 'helseid-broker (src)').slice(0, 25), true)
  print('Top functions by inclusive time', summary.inclusive.slice(0, top), true)
}

function print (title: string, rows: readonly Ranked[], withWhere: boolean): void {
  console.log(`\n${title}`)
  console.log(withWhere ? '| self/incl. ms | share | function | where | area |\n|---:|---:|---|---|---|' : '| ms | share | area |\n|---:|---:|---|')
  for (const row of rows) {
    console.log(withWhere
      ? `| ${row.ms.toFixed(0)} | ${(row.share * 100).toFixed(1)} % | ${row.name} | ${row.where} | ${row.category} |`
      : `| ${row.ms.toFixed(0)} | ${(row.share * 100).toFixed(1)} % | ${row.name} |`)
  }
}

main().catch(async (error: unknown) => {
  console.error(error)
  await stopEverything()
  process.exitCode = 1
})
