// Small helpers shared by the demo's loopback servers: a cancellable delay.

import { setTimeout as delay } from 'node:timers/promises'

/** Waits `ms` of real time, or less when `signal` aborts; never rejects. */
export async function sleepMs (ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return
  try {
    await delay(ms, undefined, { signal })
  } catch {
    // aborted by close(): answer at once so that the server can stop
  }
}
