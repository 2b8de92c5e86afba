// Tests for `hash-secret`: a generated secret and its hash, a hash of a secret from stdin, refusals, and the CLI wiring.

import t from 'tap'
import { PassThrough } from 'node:stream'
import { runCli } from '../helpers/run-cli.ts'
import { readFirstLine, runHashSecret } from '../../src/commands/hash-secret.ts'
import { exitCodes } from '../../src/errors.ts'
import { parseSecretHash, verifySecretHash } from '../../src/security/secret-hash.ts'

async function run (options: { generate: boolean }, stdin?: string): Promise<{ code: number, out: string[], err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await runHashSecret(options, { out: line => { out.push(line) }, err: line => { err.push(line) }, readLine: async () => stdin })
  return { code, out, err }
}

async function verifies (secret: string, line: string | undefined): Promise<boolean> {
  const hash = parseSecretHash(line?.replace(/^secretHash: /, '') ?? '')
  if (typeof hash === 'string') throw new Error(hash)
  return await verifySecretHash(secret, hash)
}

t.test('--generate: a new secret and its hash, as two labelled lines', async t => {
  const { code, out, err } = await run({ generate: true })

  t.equal(code, exitCodes.ok)
  t.same(err, [])
  t.equal(out.length, 2)
  t.match(out[0], /^secret: [A-Za-z0-9_-]{43}$/)
  t.match(out[1], /^secretHash: scrypt\$16384\$8\$1\$/)
  t.equal(await verifies(out[0]?.replace('secret: ', '') ?? '', out[1]), true)
  const second = await run({ generate: true })
  t.not(second.out[0], out[0], 'a new secret every time')
})

t.test('stdin: one line becomes a hash; a trailing CR is dropped', async t => {
  const plain = await run({ generate: false }, 'correct horse battery staple')
  const crlf = await run({ generate: false }, 'correct horse battery staple\r')

  t.equal(plain.code, exitCodes.ok)
  t.same(plain.err, [])
  t.equal(plain.out.length, 1)
  t.equal(await verifies('correct horse battery staple', plain.out[0]), true)
  t.equal(await verifies('correct horse battery staple\r', plain.out[0]), false)
  t.equal(await verifies('correct horse battery staple', crlf.out[0]), true)
})

t.test('stdin: nothing, short, padded or control characters is a usage error that does not echo the secret', async t => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, 'no secret on stdin'],
    ['', 'no secret on stdin'],
    ['kort-hemmeleg', 'the secret is too short (under 16 characters)'],
    [' padded-secret-0123456789', 'the secret starts or ends with a space'],
    ['tab\tinside-0123456789', 'the secret holds a control character']
  ]
  for (const [stdin, reason] of cases) {
    const { code, out, err } = await run({ generate: false }, stdin)
    t.equal(code, exitCodes.usage, reason)
    t.same(out, [])
    t.match(err.join('\n'), reason)
    t.match(err.join('\n'), 'hash-secret --generate')
    if (stdin !== undefined && stdin.length > 4) t.notOk(err.join('\n').includes(stdin.trim()), 'the secret is not echoed')
  }
})

t.test('readFirstLine: up to the first line break, or all of it, or undefined', async t => {
  const streamOf = (...chunks: string[]): PassThrough => {
    const stream = new PassThrough()
    for (const chunk of chunks) stream.write(chunk)
    stream.end()
    return stream
  }

  t.equal(await readFirstLine(streamOf('abc', 'def\nsecond line\n')), 'abcdef')
  t.equal(await readFirstLine(streamOf('no newline')), 'no newline')
  t.equal(await readFirstLine(streamOf('crlf\r\n')), 'crlf\r')
  t.equal(await readFirstLine(streamOf()), undefined)
})

t.test('the CLI: hash-secret with injected stdin, --generate, and flags on the wrong commands', async t => {
  const run = async (argv: string[], stdin?: string): Promise<{ code: number, out: string, err: string }> => await runCli(argv, { readLine: async () => stdin })

  const fromStdin = await run(['hash-secret'], 'correct horse battery staple')
  const generated = await run(['hash-secret', '--generate'])
  const empty = await run(['hash-secret'])
  const generateElsewhere = await run(['check', '--config', 'x.yaml', '--generate'])
  const flagElsewhere = await run(['hash-secret', '--allow-insecure-key-permissions'])
  const help = await run(['--help'])

  t.equal(fromStdin.code, 0)
  t.equal(await verifies('correct horse battery staple', fromStdin.out), true)
  t.equal(generated.code, 0)
  t.match(generated.out, /^secret: .+\nsecretHash: scrypt\$/)
  t.equal(empty.code, 64)
  t.equal(generateElsewhere.code, 64)
  t.match(generateElsewhere.err, '--generate applies to hash-secret only')
  t.equal(flagElsewhere.code, 64)
  t.match(flagElsewhere.err, '--allow-insecure-key-permissions applies to serve, check, token, keys and doctor only')
  t.match(help.out, 'helseid-broker hash-secret [--generate]')
  t.match(help.out, '--allow-insecure-key-permissions')
})
