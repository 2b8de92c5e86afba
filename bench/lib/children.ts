// Starting and stopping peer child processes (bench/peer.ts) and external programs; everything started is stopped,
// also when the benchmark fails or is interrupted.

import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildReply, PeerSpec } from './protocol.ts'

/** A running peer child. */
export interface PeerChild {
  readonly pid: number
  readonly url: string
  readonly notes: readonly string[]
  /** CLOCK_MONOTONIC µs and memory usage inside the child, now. */
  readonly mark: () => Promise<{ readonly monotonicUs: number, readonly memory: NodeJS.MemoryUsage }>
  /** Makes the child SIGTERM `pid` should this process die without stopping it (see protocol.ts). */
  readonly watch: (pid: number) => void
  /** Undoes watch (the process was stopped normally; its pid may be reused). */
  readonly unwatch: (pid: number) => void
  /** Asks the child to close its servers and exit; kills it after `graceMs`. */
  readonly stop: (graceMs?: number) => Promise<void>
}

const peerScript = fileURLToPath(new URL('../peer.js', import.meta.url))
const running = new Set<ChildProcess>()
const cleanups = new Set<() => Promise<void>>()

/** Registers a stop function for something started outside this module (nginx); runs in stopEverything. */
export function onCleanup (cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup)
  return () => { cleanups.delete(cleanup) }
}

/** Forks bench/peer.js, starts `spec` in it and waits until it listens. */
export async function startPeer (spec: PeerSpec, options: { readonly execArgv?: readonly string[], readonly timeoutMs?: number } = {}): Promise<PeerChild> {
  const child = fork(peerScript, [], {
    execArgv: [...(options.execArgv ?? [])],
    // stdout (the broker's JSON log lines) goes to /dev/null; stderr shows crashes.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' }
  })
  running.add(child)
  const exited = new Promise<void>(resolve => { child.once('exit', () => { running.delete(child); resolve() }) })
  const replies: Array<(reply: ChildReply) => void> = []
  child.on('message', (reply: ChildReply) => { replies.shift()?.(reply) })
  const ask = async (message: unknown, timeoutMs = 10_000): Promise<ChildReply> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`peer ${spec.kind} (pid ${child.pid}) did not answer within ${timeoutMs} ms`)) }, timeoutMs)
    replies.push(reply => { clearTimeout(timer); resolve(reply) })
    void exited.then(() => { clearTimeout(timer); reject(new Error(`peer ${spec.kind} exited (code ${child.exitCode})`)) })
    child.send(message as object)
  })
  let ready: ChildReply
  try {
    ready = await ask({ type: 'start', spec }, options.timeoutMs ?? 60_000)
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
  if (ready.type !== 'ready') {
    child.kill('SIGKILL')
    throw new Error(`peer ${spec.kind} failed to start: ${ready.type === 'error' ? ready.message : ready.type}`)
  }
  return {
    pid: ready.pid,
    url: ready.url,
    notes: ready.notes,
    async mark () {
      const reply = await ask({ type: 'mark' })
      if (reply.type !== 'mark') throw new Error(`unexpected reply ${reply.type}`)
      return reply
    },
    watch (pid) {
      if (child.connected) child.send({ type: 'watch', pid })
    },
    unwatch (pid) {
      if (child.connected) child.send({ type: 'unwatch', pid })
    },
    async stop (graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) child.send({ type: 'stop' })
      const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
      await exited
      clearTimeout(timer)
    }
  }
}

/** Stops every child and external program still running (graceful first, then SIGKILL). */
export async function stopEverything (): Promise<void> {
  const pending = [...cleanups].map(async cleanup => { try { await cleanup() } catch { /* keep stopping the rest */ } })
  cleanups.clear()
  for (const child of running) {
    if (child.connected) child.send({ type: 'stop' })
  }
  const deadline = Date.now() + 5000
  while (running.size > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  for (const child of running) child.kill('SIGKILL')
  await Promise.all(pending)
}

// Last resort: whatever is still running when this process exits is killed.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping everything the benchmark started\n`)
    void stopEverything().finally(() => { process.exit(130) })
  })
}
