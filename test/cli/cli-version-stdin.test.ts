// The CLI's --version matches the package, and the real binary's hash-secret reads a secret piped into stdin.

import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseSecretHash, verifySecretHash } from '../../src/security/secret-hash.ts'
import { runCli } from '../helpers/run-cli.ts'

const bin = fileURLToPath(new URL('../../src/bin.js', import.meta.url))
const packageJson = fileURLToPath(new URL('../../../package.json', import.meta.url))

t.test('--version prints the version of the package', async t => {
  const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }
  const result = await runCli(['--version'])
  t.equal(result.code, 0)
  t.equal(result.out, `helseid-broker ${version}`)
  t.equal(result.err, '')
})

t.test('the real binary: hash-secret hashes the first line piped into stdin, without echoing it', async t => {
  const secret = 'piped-caller-secret-4711'
  const child = spawn(process.execPath, [bin, 'hash-secret'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  child.stdin.end(`${secret}\nsecond line ignored\n`)
  const [code] = await once(child, 'close') as [number | null]

  t.equal(code, 0, stderr)
  t.notMatch(stdout + stderr, secret, 'the secret is not printed')
  const line = stdout.split('\n').find(text => text.startsWith('secretHash: ')) ?? ''
  const hash = parseSecretHash(line.replace(/^secretHash: /, ''))
  if (typeof hash === 'string') throw new Error(`no hash printed: ${stdout}`)
  t.equal(await verifySecretHash(secret, hash), true, 'the printed hash verifies the piped secret')
  t.equal(await verifySecretHash('second line ignored', hash), false)
})
