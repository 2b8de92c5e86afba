// Sanity checks before load: a peer answers the person path with 200 and the whole body.

import { request } from 'undici'
import { personBody } from './fixtures.ts'

/** GETs `origin + path` and throws unless it is a 200 with the person body; returns the status and byte count. */
export async function expectPerson (origin: string, path: string): Promise<void> {
  const response = await request(`${origin}${path}`)
  const body = Buffer.from(await response.body.arrayBuffer())
  if (response.statusCode !== 200 || !body.equals(personBody)) {
    throw new Error(`GET ${path} via ${origin}: status ${response.statusCode}, ${body.length} bytes (expected 200, ${personBody.length} bytes): ${body.subarray(0, 300).toString()}`)
  }
}

/** Runs `task` over `items` with at most `limit` at once. */
export async function forEachLimited<T> (items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await task(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
