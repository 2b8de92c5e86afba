// Memory of another process from /proc (Linux): current and peak resident set size, and a sampler.

import { readFileSync, writeFileSync } from 'node:fs'

/** VmRSS and VmHWM of `pid` in bytes; undefined when /proc is not readable (not Linux, or the process is gone). */
export function readRss (pid: number): { readonly rssBytes: number, readonly hwmBytes: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const kb = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)
    return match?.[1] === undefined ? Number.NaN : Number(match[1]) * 1024
  }
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') }
}

/** Resets the peak RSS (VmHWM) of `pid` to its current RSS (Linux ≥ 4.0); false when not allowed. */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** Samples VmRSS every `intervalMs` until stopped; `stop` returns the largest sample and VmHWM. */
export function sampleRss (pid: number, intervalMs = 50): { stop: () => { readonly maxRssBytes: number, readonly hwmBytes: number } } {
  let maxRssBytes = 0
  const take = (): void => {
    const now = readRss(pid)
    if (now !== undefined && now.rssBytes > maxRssBytes) maxRssBytes = now.rssBytes
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop () {
      clearInterval(timer)
      take()
      return { maxRssBytes, hwmBytes: readRss(pid)?.hwmBytes ?? Number.NaN }
    }
  }
}

/** Bytes as MB with one decimal (1 MB = 2^20 bytes). */
export function mb (bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : 'n/a'
}
