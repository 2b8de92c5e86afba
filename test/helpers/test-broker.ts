// Starts the real broker against the local authority and local Persontjenesten on loopback, torn down with the test.

import type { Test } from 'tap'
import { startDemo, type DemoEnvironment, type DemoOptions } from '../../src/demo/demo-broker.ts'
import { captureLogs } from './capture-logs.ts'

export interface TestBroker extends DemoEnvironment {
  readonly logs: ReturnType<typeof captureLogs>
  /** Calls the broker's proxy listener. */
  readonly call: (path: string, init?: RequestInit) => Promise<Response>
  /** Calls the broker's admin listener. */
  readonly admin: (path: string) => Promise<Response>
}

/** Starts a broker on free ports with fast retries; everything is closed at the end of `t`. */
export async function startTestBroker (t: Test, overrides: Partial<Omit<DemoOptions, 'logger' | 'proxyPort' | 'adminPort'>> = {}): Promise<TestBroker> {
  const logs = captureLogs()
  const demo = await startDemo({
    proxyPort: 0,
    adminPort: 0,
    logger: logs.logger,
    ...overrides,
    // Key expiry checks ask HelseID for tokens in the background; tests that want them pass broker: { checkKeyExpiry: true }.
    broker: { retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 }, checkKeyExpiry: false, ...overrides.broker }
  })
  t.teardown(async () => { await demo.close() })
  return {
    ...demo,
    logs,
    call: async (path, init) => await fetch(`${demo.broker.proxyUrl}${path}`, init),
    admin: async path => await fetch(`${demo.broker.adminUrl}${path}`)
  }
}

/** A request with the target sent exactly as given (fetch would normalise dot segments away). */
export async function rawRequest (origin: string, target: string, options: { method?: string, headers?: Record<string, string>, auth?: string } = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const { request } = await import('node:http')
  const url = new URL(origin)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: target, method: options.method ?? 'GET', headers: options.headers ?? {}, ...(options.auth === undefined ? {} : { auth: options.auth }) }, response => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }) })
    })
    req.on('error', reject)
    req.end()
  })
}
