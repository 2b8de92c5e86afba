// Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time and by inclusive time, within a time window.

import { readFileSync } from 'node:fs'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface Ranked {
  readonly name: string
  readonly where: string
  readonly category: string
  readonly ms: number
  readonly share: number
}

export interface ProfileSummary {
  /** Sampled time inside the window, ms (idle included). */
  readonly windowMs: number
  /** Sampled time minus (idle), ms. */
  readonly busyMs: number
  readonly self: readonly Ranked[]
  readonly inclusive: readonly Ranked[]
  readonly categories: readonly Ranked[]
}

/** Summarises samples taken between `fromUs` and `toUs` (CLOCK_MONOTONIC µs, the profile's own clock); shares are of busy time. */
export function summariseProfile (file: string, fromUs = Number.NEGATIVE_INFINITY, toUs = Number.POSITIVE_INFINITY): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const categories = new Map<string, number>()
  const frames = new Map<string, CallFrame>()
  let windowUs = 0
  let idleUs = 0
  let at = profile.startTime
  for (let index = 0; index < profile.samples.length; index++) {
    at += profile.timeDeltas[index] ?? 0
    // A sample stands for the interval until the next one.
    const weight = profile.timeDeltas[index + 1] ?? 0
    if (at < fromUs || at > toUs) continue
    const node = byId.get(profile.samples[index] ?? -1)
    if (node === undefined) continue
    windowUs += weight
    const key = frameKey(node.callFrame)
    frames.set(key, node.callFrame)
    if (node.callFrame.functionName === '(idle)') { idleUs += weight; continue }
    self.set(key, (self.get(key) ?? 0) + weight)
    const category = categoryOf(node.callFrame)
    categories.set(category, (categories.get(category) ?? 0) + weight)
    const seen = new Set<string>()
    for (let current: number | undefined = node.id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)?.callFrame
      if (frame === undefined || frame.functionName === '(root)') continue
      const frameId = frameKey(frame)
      if (seen.has(frameId)) continue
      seen.add(frameId)
      frames.set(frameId, frame)
      inclusive.set(frameId, (inclusive.get(frameId) ?? 0) + weight)
    }
  }
  const busyUs = windowUs - idleUs
  const rank = (map: Map<string, number>, describe: (key: string) => { name: string, where: string, category: string }): Ranked[] =>
    [...map].sort((a, b) => b[1] - a[1]).map(([key, us]) => ({ ...describe(key), ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }))
  const describeFrame = (key: string): { name: string, where: string, category: string } => {
    const frame = frames.get(key)
    if (frame === undefined) return { name: key, where: '', category: '' }
    return { name: frame.functionName === '' ? '(anonymous)' : frame.functionName, where: shortUrl(frame), category: categoryOf(frame) }
  }
  return {
    windowMs: windowUs / 1000,
    busyMs: busyUs / 1000,
    self: rank(self, describeFrame),
    inclusive: rank(inclusive, describeFrame),
    categories: rank(categories, key => ({ name: key, where: '', category: key }))
  }
}

function frameKey (frame: CallFrame): string {
  return `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}\u0000${frame.columnNumber}`
}

/** Where a function lives, shortened: `src/proxy/forwarder.js:57`, `undici/lib/core/util.js:12`, `node:internal/http:3`. */
function shortUrl (frame: CallFrame): string {
  if (frame.url === '') return '(native)'
  const line = frame.lineNumber + 1
  const modules = frame.url.lastIndexOf('/node_modules/')
  if (modules !== -1) return `${frame.url.slice(modules + '/node_modules/'.length)}:${line}`
  const dist = frame.url.indexOf('/dist/')
  if (dist !== -1) return `${frame.url.slice(dist + '/dist/'.length)}:${line}`
  return `${frame.url.replace(/^file:\/\//, '')}:${line}`
}

/** Package, broker module, Node core, or V8 (GC, native code). */
function categoryOf (frame: CallFrame): string {
  if (frame.url === '') {
    if (frame.functionName.startsWith('(')) return frame.functionName
    return 'native (V8 builtins, crypto, syscalls)'
  }
  const modules = frame.url.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = frame.url.slice(modules + '/node_modules/'.length).split('/')
    return (rest[0] ?? '').startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0] ?? '?'
  }
  if (frame.url.includes('/dist/src/')) return 'helseid-broker (src)'
  if (frame.url.startsWith('node:')) return 'node core'
  return 'other'
}
