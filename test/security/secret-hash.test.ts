// Tests for caller secret hashing: format, round trip, wrong secrets, malformed hashes and cost bounds.

import t from 'tap'
import { scryptSync } from 'node:crypto'
import { generateSecret, hashSecret, parseSecretHash, scryptLimits, verifySecretHash, type ParsedSecretHash } from '../../src/security/secret-hash.ts'

const salt = Buffer.alloc(16, 7).toString('base64url')
const key = Buffer.alloc(32, 9).toString('base64url')

function parsed (text: string): ParsedSecretHash {
  const result = parseSecretHash(text)
  if (typeof result === 'string') throw new Error(result)
  return result
}

t.test('generateSecret: 32 random bytes as base64url', async t => {
  const a = generateSecret()
  const b = generateSecret()

  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.equal(Buffer.from(a, 'base64url').length, 32)
  t.not(a, b)
})

t.test('hashSecret → parseSecretHash → verifySecretHash round trip; a wrong secret is false', async t => {
  const secret = generateSecret()
  const text = await hashSecret(secret)
  const again = await hashSecret(secret)

  t.match(text, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.not(text, again, 'a fresh salt every time')
  const hash = parsed(text)
  t.match(hash, { N: 16384, r: 8, p: 1 })
  t.equal(hash.salt.length, 16)
  t.equal(hash.key.length, 32)
  t.equal(await verifySecretHash(secret, hash), true)
  t.equal(await verifySecretHash(secret, parsed(again)), true)
  t.equal(await verifySecretHash(`${secret}x`, hash), false)
  t.equal(await verifySecretHash(secret.slice(0, -1), hash), false)
  t.equal(await verifySecretHash('', hash), false)
  t.equal(await verifySecretHash(secret.toUpperCase(), hash), false)
})

t.test('hashes with other (allowed) costs and lengths verify too', async t => {
  const secret = 'ein-lang-nok-hemmelegheit-æøå'
  const saltBytes = Buffer.alloc(24, 3)
  const derived = scryptSync(secret, saltBytes, 64, { N: 1024, r: 4, p: 2 })
  const text = `scrypt$1024$4$2$${saltBytes.toString('base64url')}$${derived.toString('base64url')}`

  t.equal(await verifySecretHash(secret, parsed(text)), true)
  t.equal(await verifySecretHash(secret.normalize('NFD'), parsed(text)), false, 'bytes as given, no normalisation')
})

t.test('malformed hashes are refused with a reason that does not repeat the text', async t => {
  const reasons: Array<[string, string]> = [
    ['', 'expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'],
    ['correct horse battery staple', 'expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'],
    ['$2b$10$abcdefghijklmnopqrstuv', 'expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'],
    [`SCRYPT$16384$8$1$${salt}$${key}`, 'expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'],
    [`scrypt$16384$8$1$${salt}`, 'expected 6 "$"-separated fields (scrypt$N$r$p$salt$key), got 5'],
    [`scrypt$16384$8$1$${salt}$${key}$`, 'expected 6 "$"-separated fields (scrypt$N$r$p$salt$key), got 7'],
    [`scrypt$16384$8$0$${salt}$${key}`, 'N, r and p must be positive whole numbers'],
    [`scrypt$16384$08$1$${salt}$${key}`, 'N, r and p must be positive whole numbers'],
    [`scrypt$1e4$8$1$${salt}$${key}`, 'N, r and p must be positive whole numbers'],
    [`scrypt$-16384$8$1$${salt}$${key}`, 'N, r and p must be positive whole numbers'],
    [`scrypt$16000$8$1$${salt}$${key}`, 'N must be a power of 2, got 16000'],
    [`scrypt$1$8$1$${salt}$${key}`, 'N must be a power of 2, got 1'],
    [`scrypt$16384$8$1$${salt}=$${key}`, 'the salt is not base64url'],
    [`scrypt$16384$8$1$${salt.replace(/.$/, '+')}$${key}`, 'the salt is not base64url'],
    [`scrypt$16384$8$1$${salt.slice(0, -1)}B$${key}`, 'the salt is not base64url'],
    [`scrypt$16384$8$1$$${key}`, 'the salt is not base64url'],
    [`scrypt$16384$8$1$${Buffer.alloc(8).toString('base64url')}$${key}`, 'the salt must be 16 to 64 bytes, got 8'],
    [`scrypt$16384$8$1$${Buffer.alloc(65).toString('base64url')}$${key}`, 'the salt must be 16 to 64 bytes, got 65'],
    [`scrypt$16384$8$1$${salt}$${key}/`, 'the key is not base64url'],
    [`scrypt$16384$8$1$${salt}$${Buffer.alloc(15).toString('base64url')}`, 'the key must be 16 to 64 bytes, got 15'],
    [`scrypt$16384$8$1$${salt}$${Buffer.alloc(65).toString('base64url')}`, 'the key must be 16 to 64 bytes, got 65']
  ]
  for (const [text, reason] of reasons) t.equal(parseSecretHash(text), reason, JSON.stringify(text))
})

t.test('costs are bounded so that a config cannot make each check take seconds or gigabytes', async t => {
  const withCost = (N: number, r: number, p: number): ParsedSecretHash | string => parseSecretHash(`scrypt$${N}$${r}$${p}$${salt}$${key}`)

  t.same(scryptLimits, { maxN: 2 ** 20, maxR: 32, maxP: 16, maxMemoryBytes: 256 * 1024 * 1024, maxWork: 2 ** 22 })
  t.equal(withCost(2 ** 21, 8, 1), 'N 2097152 is above the limit 1048576')
  t.equal(withCost(16384, 33, 1), 'r 33 is above the limit 32')
  t.equal(withCost(16384, 8, 17), 'p 17 is above the limit 16')
  t.equal(withCost(2 ** 16, 1, 1), 'N 65536 is too large for r 1 (scrypt needs N < 2^(16·r))')
  t.equal(withCost(2 ** 20, 8, 1), 'N 1048576 with r 8 needs 1024 MiB per check; the limit is 256 MiB')
  t.equal(withCost(2 ** 14, 32, 16), 'N·r·p = 8388608 is above the limit 4194304; every check would take seconds')
  t.match(withCost(2 ** 20, 2, 1), { N: 2 ** 20, r: 2, p: 1 }, 'the largest N with r 2: 256 MiB')
  t.match(withCost(2 ** 15, 1, 1), { N: 2 ** 15, r: 1, p: 1 })
  t.match(withCost(2 ** 14, 16, 16), { N: 2 ** 14, r: 16, p: 16 }, 'exactly at the work limit')
  t.match(withCost(2, 1, 1), { N: 2 })
})
