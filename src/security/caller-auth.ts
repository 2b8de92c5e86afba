// Who is calling: a caller's secret from `Authorization: Bearer` or HTTP Basic, checked in constant time.

import { createHash, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { CallerConfig } from '../config/config.ts'
import { BrokerError } from '../errors.ts'
import type { CallerSecret } from './caller-secrets.ts'
import { compileRouteRules, type RouteMatcher } from './route-allowlist.ts'
import { verifySecretHash } from './secret-hash.ts'

/** An authenticated caller, with its permissions ready to check. */
export interface Caller {
  readonly name: string
  readonly config: CallerConfig
  readonly mayUse: (tenant: string, api: string) => boolean
  readonly matcher: RouteMatcher | undefined
}

/** Resolves the Authorization header to a caller. @throws BrokerError BROKER_CALLER_UNAUTHENTICATED */
export type CallerAuthenticator = (authorization: string | undefined) => Promise<Caller>

/**
 * Creates the authenticator. A verified secret is remembered by its SHA-256 digest, so the slow
 * scrypt check runs once per secret, not once per call; wrong secrets are remembered too.
 */
export function createCallerAuthenticator (callers: Readonly<Record<string, CallerConfig>>, secrets: ReadonlyMap<string, CallerSecret>): CallerAuthenticator {
  const byName = new Map(Object.values(callers).map(config => [config.name, toCaller(config)]))
  const known = new LRUCache<string, Caller>({ max: 1000 })
  const refused = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 })

  // scrypt runs on libuv's small thread pool (shared with file and DNS work): at most two checks at once.
  const scryptSlots = createQueue(2)
  const verify = async (caller: Caller, presented: string): Promise<boolean> => {
    const secret = secrets.get(caller.name)
    if (secret === undefined) return false
    if (secret.kind === 'plain') return timingSafeEqual(sha256(presented), secret.sha256)
    return await scryptSlots(async () => await verifySecretHash(presented, secret.hash))
  }

  return async authorization => {
    const credentials = parseAuthorization(authorization)
    const digest = sha256(`${credentials.user ?? ''}\u0000${credentials.secret}`).toString('base64url')
    const cached = known.get(digest)
    if (cached !== undefined) return cached
    if (refused.has(digest)) throw unauthenticated('the caller secret is not valid')
    const candidates = credentials.user === undefined
      ? [...byName.values()]
      : [byName.get(credentials.user)].filter(caller => caller !== undefined)
    for (const caller of candidates) {
      if (await verify(caller, credentials.secret)) {
        known.set(digest, caller)
        return caller
      }
    }
    refused.set(digest, true)
    throw unauthenticated('the caller secret is not valid')
  }
}

/** Runs at most `size` tasks at once; the rest wait their turn. */
function createQueue (size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0
  const waiting: Array<() => void> = []
  return async task => {
    if (running >= size) await new Promise<void>(resolve => waiting.push(resolve))
    running++
    try {
      return await task()
    } finally {
      running--
      waiting.shift()?.()
    }
  }
}

function toCaller (config: CallerConfig): Caller {
  const tenants = config.tenants === '*' ? undefined : new Set(config.tenants)
  const apis = config.apis === undefined ? undefined : new Set(config.apis)
  return {
    name: config.name,
    config,
    mayUse: (tenant, api) => (tenants === undefined || tenants.has(tenant)) && (apis === undefined || apis.has(api)),
    matcher: compileRouteRules(config.allow)
  }
}

function parseAuthorization (header: string | undefined): { readonly user?: string, readonly secret: string } {
  if (header === undefined || header === '') throw unauthenticated('this broker requires a caller secret: send Authorization: Bearer <secret> or HTTP Basic')
  const space = header.indexOf(' ')
  const scheme = header.slice(0, space === -1 ? header.length : space).toLowerCase()
  const value = space === -1 ? '' : header.slice(space + 1).trim()
  if (scheme === 'bearer' && value !== '') return printable({ secret: value })
  if (scheme === 'basic' && value !== '') {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon > 0) return printable({ user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) })
  }
  throw unauthenticated('the Authorization header must be "Bearer <secret>" or HTTP Basic with the caller name as user')
}

/**
 * Secrets are printable text (a secret file may not hold control characters). A trailing NUL must not
 * pass: scrypt's HMAC pads keys shorter than its block with zero bytes, so scrypt("s\0") equals scrypt("s").
 */
function printable (credentials: { readonly user?: string, readonly secret: string }): { readonly user?: string, readonly secret: string } {
  if (/[\u0000-\u001f\u007f]/.test(`${credentials.user ?? ''}${credentials.secret}`)) throw unauthenticated('the caller secret is not valid')
  return credentials
}

function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function unauthenticated (message: string): BrokerError {
  return new BrokerError('BROKER_CALLER_UNAUTHENTICATED', message)
}
