// CPU used by other programs while the benchmark runs: on a small machine a concurrent build skews every number,
// so each run reports it and the benchmark waits for a quiet machine before measuring.

import { readdirSync, readFileSync } from 'node:fs'

/** Kernel clock ticks per second of /proc/stat and /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100

export interface CpuSnapshot {
  readonly atMs: number
  /** user + nice + system ticks of all CPUs. */
  readonly busyTicks: number
  /** utime + stime ticks per process of this process tree. */
  readonly ours: ReadonlyMap<number, number>
}

/** Takes a snapshot; undefined when /proc is not available. */
export function cpuSnapshot (): CpuSnapshot | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    const busyTicks = (fields[0] ?? 0) + (fields[1] ?? 0) + (fields[2] ?? 0)
    return { atMs: performance.now(), busyTicks, ours: treeTicks(process.pid) }
  } catch {
    return undefined
  }
}

/** Average number of cores used by processes outside this process tree between two snapshots. */
export function foreignCores (before: CpuSnapshot | undefined, after: CpuSnapshot | undefined): number {
  if (before === undefined || after === undefined) return Number.NaN
  const seconds = (after.atMs - before.atMs) / 1000
  if (seconds <= 0) return Number.NaN
  let oursTicks = 0
  for (const [pid, ticks] of after.ours) oursTicks += ticks - (before.ours.get(pid) ?? 0)
  const foreignTicks = after.busyTicks - before.busyTicks - oursTicks
  return Math.max(0, foreignTicks / ticksPerSecond / seconds)
}

/**
 * Waits until other programs use less than `thresholdCores` over one second, for at most `maxWaitMs`;
 * returns the last measurement and how long it waited.
 */
export async function waitForQuiet (thresholdCores: number, maxWaitMs: number): Promise<{ readonly foreign: number, readonly waitedMs: number }> {
  const started = performance.now()
  for (;;) {
    const before = cpuSnapshot()
    if (before === undefined) return { foreign: Number.NaN, waitedMs: 0 }
    await new Promise(resolve => setTimeout(resolve, 1000))
    const foreign = foreignCores(before, cpuSnapshot())
    const waitedMs = performance.now() - started
    if (!(foreign >= thresholdCores) || waitedMs >= maxWaitMs) return { foreign, waitedMs }
  }
}

/** CPU time (user + system, all threads) of `pid` and its descendants, in ms; NaN when /proc is not available. */
export function processTreeCpuMs (pid: number): number {
  try {
    let ticks = 0
    for (const value of treeTicks(pid).values()) ticks += value
    return ticks * 1000 / ticksPerSecond
  } catch {
    return Number.NaN
  }
}

/** utime + stime ticks of `root` and all its descendants. */
function treeTicks (root: number): Map<number, number> {
  const parents = new Map<number, number>()
  const ticks = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let text: string
    try { text = readFileSync(`/proc/${entry}/stat`, 'utf8') } catch { continue }
    // Fields after "(comm)": state ppid … utime(14) stime(15), counted from 1 with pid first.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const pid = Number(entry)
    parents.set(pid, Number(rest[1]))
    ticks.set(pid, Number(rest[11]) + Number(rest[12]))
  }
  const ours = new Map<number, number>()
  for (const [pid, value] of ticks) {
    for (let current: number | undefined = pid; current !== undefined && current > 1; current = parents.get(current)) {
      if (current === root) { ours.set(pid, value); break }
    }
  }
  return ours
}
