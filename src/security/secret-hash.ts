// Caller secrets: generation, scrypt hashing (`scrypt$N$r$p$salt$key`) and constant-time verification.

import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/** A parsed `scrypt$N$r$p$salt$key` hash; salt and key are raw bytes. */
export interface ParsedSecretHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly key: Buffer
}

/** Cost parameters of new hashes (RFC 7914 §2's interactive-login choice: ~50 ms, 16 MiB). */
export const scryptDefaults = { N: 16_384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const

/**
 * Upper bounds for hashes read from the config, so that a hash cannot make every verification
 * take seconds or gigabytes: N ≤ 2^20, r ≤ 32, p ≤ 16, memory (128·N·r) ≤ 256 MiB, work (N·r·p) ≤ 2^22.
 */
export const scryptLimits = { maxN: 2 ** 20, maxR: 32, maxP: 16, maxMemoryBytes: 256 * 1024 * 1024, maxWork: 2 ** 22 } as const

/** Shortest secret accepted from a secret file or by `hash-secret` (generated ones are 43 characters). */
export const minSecretLength = 16

const base64urlPattern = /^[A-Za-z0-9_-]+$/
const decimalPattern = /^[1-9][0-9]{0,9}$/

/** A new random secret: 32 random bytes, base64url (43 characters). */
export function generateSecret (): string {
  return randomBytes(32).toString('base64url')
}

/** Hashes a secret with scrypt (N=16384, r=8, p=1, 16-byte random salt, 32-byte key). */
export async function hashSecret (secret: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = scryptDefaults
  const salt = randomBytes(saltBytes)
  const key = await scryptAsync(secret, salt, keyBytes, { N, r, p })
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Parses a hash made by hashSecret; returns the reason (without the hash text) when it is not one, or its costs are out of bounds. */
export function parseSecretHash (text: string): ParsedSecretHash | string {
  const parts = text.split('$')
  if (parts[0] !== 'scrypt') return 'expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'
  if (parts.length !== 6) return `expected 6 "$"-separated fields (scrypt$N$r$p$salt$key), got ${parts.length}`
  const [, nText = '', rText = '', pText = '', saltText = '', keyText = ''] = parts
  if (![nText, rText, pText].every(part => decimalPattern.test(part))) return 'N, r and p must be positive whole numbers'
  const N = Number(nText)
  const r = Number(rText)
  const p = Number(pText)
  if (N < 2 || (N & (N - 1)) !== 0) return `N must be a power of 2, got ${N}`
  if (N > scryptLimits.maxN) return `N ${N} is above the limit ${scryptLimits.maxN}`
  if (r > scryptLimits.maxR) return `r ${r} is above the limit ${scryptLimits.maxR}`
  if (p > scryptLimits.maxP) return `p ${p} is above the limit ${scryptLimits.maxP}`
  // RFC 7914 §2: N < 2^(128·r/8); OpenSSL refuses anything else.
  if (N >= 2 ** (16 * r)) return `N ${N} is too large for r ${r} (scrypt needs N < 2^(16·r))`
  if (128 * N * r > scryptLimits.maxMemoryBytes) return `N ${N} with r ${r} needs ${(128 * N * r) / (1024 * 1024)} MiB per check; the limit is ${scryptLimits.maxMemoryBytes / (1024 * 1024)} MiB`
  if (N * r * p > scryptLimits.maxWork) return `N·r·p = ${N * r * p} is above the limit ${scryptLimits.maxWork}; every check would take seconds`
  const salt = decodeBase64url(saltText)
  if (salt === undefined) return 'the salt is not base64url'
  if (salt.length < 16 || salt.length > 64) return `the salt must be 16 to 64 bytes, got ${salt.length}`
  const key = decodeBase64url(keyText)
  if (key === undefined) return 'the key is not base64url'
  if (key.length < 16 || key.length > 64) return `the key must be 16 to 64 bytes, got ${key.length}`
  return { N, r, p, salt, key }
}

/** True when `presented` hashes to `hash.key`; compared in constant time. */
export async function verifySecretHash (presented: string, hash: ParsedSecretHash): Promise<boolean> {
  const derived = await scryptAsync(presented, hash.salt, hash.key.length, { N: hash.N, r: hash.r, p: hash.p })
  return timingSafeEqual(derived, hash.key)
}

function decodeBase64url (text: string): Buffer | undefined {
  if (!base64urlPattern.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64url')
  // Only the canonical encoding: no stray bits in the last character.
  return bytes.toString('base64url') === text ? bytes : undefined
}

async function scryptAsync (secret: string, salt: Buffer, keyBytes: number, cost: { N: number, r: number, p: number }): Promise<Buffer> {
  // OpenSSL counts 128·r·(N + p + 2) bytes; Node's default maxmem (32 MiB) is too small for some allowed costs.
  const options: ScryptOptions = { ...cost, maxmem: 128 * cost.r * (cost.N + cost.p + 2) + 1024 * 1024 }
  return await new Promise((resolve, reject) => {
    scrypt(secret, salt, keyBytes, options, (error, key) => { if (error === null) resolve(key); else reject(error) })
  })
}
