// Small helpers shared by the demo's loopback servers: their origin and a cancellable delay.

import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

/** 'http://host:port' of a listening server, with an IPv6 host in brackets. @throws TypeError when not on TCP. */
export function originOf (address: AddressInfo | string | null, host: string): string {
  if (address === null || typeof address === 'string') throw new TypeError('server is not listening on a TCP port')
  const shownHost = host.includes(':') ? `[${host}]` : host
  return `http://${shownHost}:${address.port}`
}

/** Waits `ms` of real time, or less when `signal` aborts; never rejects. */
export async function sleepMs (ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return
  try {
    await delay(ms, undefined, { signal })
  } catch {
    // aborted by close(): answer at once so that the server can stop
  }
}
