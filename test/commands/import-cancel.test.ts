// import: Ctrl-C at the password prompt and an unreadable --password-file stop before anything is written.

import t from 'tap'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runImport, type ImportIo } from '../../src/commands/import.ts'
import { exitCodes } from '../../src/errors.ts'
import { PromptCancelledError } from '../../src/onboarding/prompt-secret.ts'
import { privateJwk, selvbetjeningDownload } from '../fixtures/client-key-files.ts'
import { makeZip } from '../fixtures/zip-files.ts'

const configText = `helseid: { environment: test }
apis:
  persontjenesten: { url: https://api.persontjenesten.test.nhn.no, scopes: [nhn:hgd-persontjenesten-api/restricted-access] }
`

async function setUp (dir: string): Promise<string> {
  const download = selvbetjeningDownload(await privateJwk('RSA-2048'), { clientId: 'c-cancel' })
  const file = join(dir, 'Nedlastinger', 'klientkonfigurasjon.zip')
  await writeFile(file, await makeZip({ 'HelseId.json': JSON.stringify(download) }, 'aes-256', 'Sms-2468-Kode'))
  return file
}

function capture (readSecret?: ImportIo['readSecret']): { io: ImportIo, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: line => { out.push(line) }, err: line => { err.push(line) }, env: {}, ...(readSecret === undefined ? {} : { readSecret }) }, out, err }
}

t.test('Ctrl-C at the password prompt: exit 1, "cancelled; nothing was written", no key and no config change', async t => {
  const dir = t.testdir({ 'broker.yaml': configText, Nedlastinger: {} })
  const file = await setUp(dir)
  let prompts = 0
  const { io, out, err } = capture(async () => { prompts++; throw new PromptCancelledError() })

  const code = await runImport({ file, configPath: join(dir, 'broker.yaml'), tenant: 'fjordvik', force: false }, io)

  t.equal(code, exitCodes.failure)
  t.equal(prompts, 1)
  t.same(err, ['import: cancelled; nothing was written'])
  t.same(out, [])
  t.same((await readdir(dir)).sort(), ['Nedlastinger', 'broker.yaml'], 'no keys directory')
  t.equal(await readFile(join(dir, 'broker.yaml'), 'utf8'), configText)
})

t.test('an unreadable --password-file: a usage error naming the file and the reason; nothing written', async t => {
  const dir = t.testdir({ 'broker.yaml': configText, Nedlastinger: {} })
  const file = await setUp(dir)
  const { io, out, err } = capture()

  const code = await runImport({ file, configPath: join(dir, 'broker.yaml'), tenant: 'fjordvik', force: false, passwordFile: join(dir, 'no-such-password.txt') }, io)

  t.equal(code, exitCodes.usage)
  t.match(err.join('\n'), `--password-file ${join(dir, 'no-such-password.txt')}: cannot read the file: ENOENT`)
  t.same(out, [])
  t.same((await readdir(dir)).sort(), ['Nedlastinger', 'broker.yaml'])
  t.equal(await readFile(join(dir, 'broker.yaml'), 'utf8'), configText)
})
