// What the numbers were measured on: cores, CPU, memory, Node and package versions.

import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Lines describing this machine and the software under test. */
export function describeMachine (extra: readonly string[] = []): string[] {
  const packages = ['fastify', 'undici', 'pino', 'jose', 'lru-cache', 'prom-client', '@fastify/http-proxy', '@fastify/reply-from', 'autocannon']
  return [
    `machine: ${availableParallelism()} cores (nproc), ${cpuModel()}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ${process.platform} ${process.arch}`,
    `node ${process.version}; ${packages.map(name => `${name} ${packageVersion(name)}`).join(', ')}`,
    ...extra
  ]
}

function cpuModel (): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU'
  } catch {
    return 'unknown CPU'
  }
}

/** The installed version of a package, found by walking up from this file to node_modules. */
export function packageVersion (name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'node_modules', name, 'package.json')
    if (existsSync(file)) {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }
      return typeof parsed.version === 'string' ? parsed.version : '?'
    }
    const parent = dirname(dir)
    if (parent === dir) return 'not installed'
    dir = parent
  }
}
