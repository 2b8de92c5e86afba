// Tests for the import command: real AES-256 and ZipCrypto zips, the bare JSON, every refusal leaving the files as they were.

import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { main, type CliIo } from '../../src/cli.ts'
import { runCheck } from '../../src/commands/check.ts'
import { parseImportArgs, runImport, zipPasswordEnv, type ImportIo, type ImportOptions } from '../../src/commands/import.ts'
import { parseConfigText } from '../../src/config/load-config.ts'
import { exitCodes } from '../../src/errors.ts'
import { privateJwk, privateValues, selvbetjeningDownload } from '../fixtures/client-key-files.ts'
import { makeZip, type ZipEncryption } from '../fixtures/zip-files.ts'

const password = 'Sms-2468-Kode'
const clientId = '3f2b9c1e-7a4d-4e21-9b6a-0c5d8e7f1a23'
const isPosix = process.platform !== 'win32'

const configText = `# helseid-broker for Granfjelldal kommune (IT: do not remove this comment)
helseid: { environment: test }   # test until go-live
apis:
  persontjenesten:
    url: https://api.persontjenesten.test.nhn.no
    scopes: [nhn:hgd-persontjenesten-api/restricted-access]   # the only scope we have
tenants:
  # Granfjelldal: the first tenant
  granfjelldal:
    client: keys/old-granfjelldal.json   # replaced by import
    organization: { child: "999977776" }
    apis: [persontjenesten]
logging: { level: info }
`

/** The download JSON as Selvbetjening writes it: privateJwk a JSON string with \u0022 escapes. */
async function downloadText (options: { clientId?: string, authority?: string, jwk?: Record<string, unknown> } = {}): Promise<string> {
  const jwk = options.jwk ?? await privateJwk('RSA-2048')
  const download = selvbetjeningDownload(jwk, { clientId: options.clientId ?? clientId, ...(options.authority === undefined ? {} : { authority: options.authority }) })
  return JSON.stringify(download, null, 2).replace(/\\"/g, '\\u0022')
}

interface Setup { readonly dir: string, readonly config: string }

function setup (t: Test, config = configText): Setup {
  const dir = t.testdir({ 'broker.yaml': config, 'Nedlastinger': {} })
  return { dir, config: join(dir, 'broker.yaml') }
}

async function writeDownload (dir: string, name: string, content: string | Uint8Array): Promise<string> {
  const file = join(dir, 'Nedlastinger', name)
  await writeFile(file, content)
  return file
}

async function zipDownload (dir: string, encryption: ZipEncryption, files?: Record<string, string | Uint8Array>): Promise<{ file: string, json: string }> {
  const json = await downloadText()
  const zip = await makeZip(files ?? { 'HelseId.json': json }, encryption, password)
  return { file: await writeDownload(dir, 'klientkonfigurasjon.zip', zip), json }
}

interface Run { readonly code: number, readonly out: string, readonly err: string, readonly prompts: readonly string[] }

async function run (options: Partial<ImportOptions> & { file: string, configPath: string }, io: { env?: Record<string, string>, secrets?: string[] } = {}): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const prompts: string[] = []
  const secrets = io.secrets
  const importIo: ImportIo = {
    out: line => { out.push(line) },
    err: line => { err.push(line) },
    env: io.env ?? {},
    now: () => new Date('2025-03-04T05:06:07.890Z'),
    ...(secrets === undefined ? {} : { readSecret: async (prompt: string) => { prompts.push(prompt); return secrets.shift() ?? '' } })
  }
  const code = await runImport({ tenant: 'fjordvik', force: false, ...options }, importIo)
  return { code, out: out.join('\n'), err: err.join('\n'), prompts }
}

/** Every file under `dir` (except the downloads) with its bytes and mode, to prove that nothing changed. */
async function snapshot (dir: string): Promise<Record<string, { content: string, mode: number }>> {
  const result: Record<string, { content: string, mode: number }> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    const name = relative(dir, path)
    if (name.startsWith('Nedlastinger')) continue
    const stats = await stat(path)
    result[name] = { content: entry.isFile() ? (await readFile(path)).toString('base64') : '(dir)', mode: stats.mode }
  }
  return result
}

async function assertImported (t: Test, dir: string, result: Run, expectedJson: string): Promise<void> {
  t.equal(result.code, exitCodes.ok, result.err)
  const keyFile = join(dir, 'keys', 'fjordvik.json')
  t.equal(await readFile(keyFile, 'utf8'), expectedJson, 'the key file is the download exactly as delivered')
  if (isPosix) {
    t.equal((await stat(keyFile)).mode & 0o777, 0o600, 'key file mode 0600')
    t.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700, 'keys/ mode 0700')
  }
  const text = await readFile(join(dir, 'broker.yaml'), 'utf8')
  t.ok(text.startsWith('# helseid-broker for Granfjelldal kommune (IT: do not remove this comment)\n'), 'the first comment survives')
  t.match(text, 'client: keys/old-granfjelldal.json   # replaced by import', 'other tenants keep their lines and comments')
  t.match(text, 'scopes: [nhn:hgd-persontjenesten-api/restricted-access]   # the only scope we have')
  const config = parseConfigText(text, join(dir, 'broker.yaml'))
  t.equal(config.tenants.fjordvik?.clientFile, keyFile)
  t.same(config.tenants.fjordvik?.apis, ['persontjenesten'])
  t.match(result.out, `imported client ${clientId}`)
  t.match(result.out, /key: kid [\w-]{43}, PS256, RSA 2048 bits/)
  t.match(result.out, `helseid-broker check --config ${join(dir, 'broker.yaml')}`)
  const secrets = [...privateValues(await privateJwk('RSA-2048')), password]
  for (const secret of secrets) t.notOk(`${result.out}\n${result.err}`.includes(secret.slice(0, 12)), 'no key material or password in the output')
}

t.test('an AES-256 zip with the password from --password-file', async t => {
  const { dir, config } = setup(t)
  const { file, json } = await zipDownload(dir, 'aes-256')
  await writeFile(join(dir, 'password.txt'), `${password}\r\n`)

  const result = await run({ file, configPath: config, passwordFile: join(dir, 'password.txt') })

  await assertImported(t, dir, result, json)
  t.match(result.out, 'klientkonfigurasjon.zip, HelseId.json (AES-256)')
})

t.test('a ZipCrypto zip with the password from HELSEID_BROKER_ZIP_PASSWORD', async t => {
  const { dir, config } = setup(t)
  const { file, json } = await zipDownload(dir, 'zipcrypto')

  const result = await run({ file, configPath: config }, { env: { [zipPasswordEnv]: password } })

  await assertImported(t, dir, result, json)
  t.match(result.out, 'HelseId.json (ZipCrypto)')
})

t.test('the password from the prompt; a wrong one is asked again', async t => {
  const { dir, config } = setup(t)
  const { file, json } = await zipDownload(dir, 'aes-256')

  const result = await run({ file, configPath: config }, { secrets: ['feil-passord', ` ${password} `] })

  await assertImported(t, dir, result, json)
  t.equal(result.prompts.length, 2, 'asked twice')
  t.match(result.prompts[0], /password/i)
  t.match(result.err, 'Wrong password; try again.')
})

t.test('the extracted JSON needs no password and earns a hint to delete it', async t => {
  const { dir, config } = setup(t)
  const json = await downloadText()
  const file = await writeDownload(dir, 'HelseId.json', json)

  const result = await run({ file, configPath: config }, { secrets: [] })

  await assertImported(t, dir, result, json)
  t.equal(result.prompts.length, 0, 'no prompt')
  t.match(result.out, 'holds the private key unencrypted: delete it')
})

t.test('the first client file in a zip is used; other files are ignored', async t => {
  const { dir, config } = setup(t)
  const json = await downloadText()
  const second = await downloadText({ clientId: 'another-client' })
  const zip = await makeZip({ 'LESMEG.txt': 'les meg', 'settings.json': '{"a":1}', 'config/HelseId.json': json, 'z.json': second }, 'aes-256', password)
  const file = await writeDownload(dir, 'download.zip', zip)

  const result = await run({ file, configPath: config }, { env: { [zipPasswordEnv]: password } })

  await assertImported(t, dir, result, json)
  t.match(result.err, 'the zip also holds z.json; it was not imported')
})

t.test('refusals write nothing: the keys and the config stay byte for byte', async t => {
  const cases: Array<{ name: string, code: number, message: RegExp | string, prepare: (dir: string) => Promise<{ file: string, passwordFile?: string, env?: Record<string, string> }> }> = [
    {
      name: 'wrong password (AES)',
      code: exitCodes.config,
      message: /wrong zip password/,
      prepare: async dir => ({ file: (await zipDownload(dir, 'aes-256')).file, env: { [zipPasswordEnv]: 'wrong-password' } })
    },
    {
      name: 'wrong password (ZipCrypto)',
      code: exitCodes.config,
      message: /wrong zip password/,
      prepare: async dir => ({ file: (await zipDownload(dir, 'zipcrypto')).file, env: { [zipPasswordEnv]: 'wrong-password' } })
    },
    {
      name: 'random bytes named .zip',
      code: exitCodes.config,
      message: /not a valid zip file/,
      prepare: async dir => ({ file: await writeDownload(dir, 'download.zip', randomBytes(2048)) })
    },
    {
      name: 'a truncated zip',
      code: exitCodes.config,
      message: /not a valid zip file/,
      prepare: async dir => {
        const zip = await makeZip({ 'HelseId.json': await downloadText() }, 'aes-256', password)
        return { file: await writeDownload(dir, 'download.zip', zip.slice(0, Math.floor(zip.length * 0.6))), env: { [zipPasswordEnv]: password } }
      }
    },
    {
      name: 'a zip without a client file',
      code: exitCodes.config,
      message: /holds no HelseID client file .*its files: LESMEG\.txt, settings\.json \(no clientId or privateJwk\), broken\.json \(not valid JSON\)/,
      prepare: async dir => {
        const zip = await makeZip({ 'LESMEG.txt': 'x', 'settings.json': '{"clientName":"x"}', 'broken.json': '{"clientId": ' }, 'aes-256', password)
        return { file: await writeDownload(dir, 'download.zip', zip), env: { [zipPasswordEnv]: password } }
      }
    },
    {
      name: 'a download for another authority (prod into a test broker)',
      code: exitCodes.config,
      message: 'is for https://helseid-sts.nhn.no but the broker\'s issuer is https://helseid-sts.test.nhn.no',
      prepare: async dir => ({ file: await writeDownload(dir, 'HelseId.json', await downloadText({ authority: 'https://helseid-sts.nhn.no/' })) })
    },
    {
      name: 'a download without a usable key (RSA 1024)',
      code: exitCodes.config,
      message: /HelseId\.json: privateJwk .*2048/,
      prepare: async dir => ({ file: await writeDownload(dir, 'HelseId.json', await downloadText({ jwk: await privateJwk('RSA-1024') as Record<string, unknown> })) })
    },
    {
      name: 'a download whose privateJwk is not a key',
      code: exitCodes.config,
      message: /privateJwk is not a JSON object/,
      prepare: async dir => ({ file: await writeDownload(dir, 'HelseId.json', JSON.stringify({ ...JSON.parse(await downloadText()), privateJwk: 'nonsense' })) })
    },
    {
      name: 'a plain JWK (no clientId)',
      code: exitCodes.config,
      message: /is not a HelseID Selvbetjening download: it has no clientId/,
      prepare: async dir => ({ file: await writeDownload(dir, 'jwk.json', JSON.stringify(await privateJwk('RSA-2048'))) })
    },
    {
      name: 'an encrypted zip and no way to get the password',
      code: exitCodes.usage,
      message: /no password was given\. Give it with --password-file FILE .*HELSEID_BROKER_ZIP_PASSWORD/,
      prepare: async dir => ({ file: (await zipDownload(dir, 'aes-256')).file })
    },
    {
      name: 'an empty password file',
      code: exitCodes.usage,
      message: /--password-file .*: the first line is empty/,
      prepare: async dir => {
        await writeFile(join(dir, 'empty.txt'), '\n')
        return { file: (await zipDownload(dir, 'aes-256')).file, passwordFile: join(dir, 'empty.txt') }
      }
    },
    {
      name: 'a missing download file',
      code: exitCodes.config,
      message: /cannot read the file: ENOENT/,
      prepare: async dir => ({ file: join(dir, 'Nedlastinger', 'nothing.zip') })
    }
  ]
  for (const testCase of cases) {
    await t.test(testCase.name, async t => {
      const { dir, config } = setup(t)
      const prepared = await testCase.prepare(dir)
      const before = await snapshot(dir)

      const result = await run({ file: prepared.file, configPath: config, ...(prepared.passwordFile === undefined ? {} : { passwordFile: prepared.passwordFile }) }, { ...(prepared.env === undefined ? {} : { env: prepared.env }) })

      t.equal(result.code, testCase.code, result.err)
      t.match(result.err, testCase.message)
      t.equal(result.out, '', 'nothing reported as done')
      t.same(await snapshot(dir), before, 'no file changed, none added')
      t.notOk(result.err.includes(password), 'the password is never printed')
    })
  }
})

t.test('the resulting config must be valid: an unknown --api writes nothing', async t => {
  const { dir, config } = setup(t)
  const file = await writeDownload(dir, 'HelseId.json', await downloadText())
  const before = await snapshot(dir)

  const result = await run({ file, configPath: config, apis: ['personregister'] })

  t.equal(result.code, exitCodes.config)
  t.match(result.err, 'tenants.fjordvik.apis[0]: no API named "personregister" in apis')
  t.same(await snapshot(dir), before)
})

t.test('a new tenant in a config with several APIs needs --api (usage error)', async t => {
  const { dir, config } = setup(t, configText.replace('tenants:', '  kjernejournal:\n    url: https://kj.test.nhn.no\n    scopes: [kj]\ntenants:'))
  const file = await writeDownload(dir, 'HelseId.json', await downloadText())
  const before = await snapshot(dir)

  const refused = await run({ file, configPath: config })
  t.equal(refused.code, exitCodes.usage)
  t.match(refused.err, 'the config has 2 APIs (persontjenesten, kjernejournal); say which tenant fjordvik may use with --api NAME')
  t.same(await snapshot(dir), before)

  const accepted = await run({ file, configPath: config, apis: ['kjernejournal', 'persontjenesten'], parent: '999977774', child: '999977775' })
  t.equal(accepted.code, exitCodes.ok, accepted.err)
  t.match(await readFile(config, 'utf8'), '  fjordvik:\n    client: keys/fjordvik.json\n    organization: { parent: "999977774", child: "999977775" }\n    apis: [kjernejournal, persontjenesten]\n')
})

t.test('an existing tenant: client updated in place, comments and other settings kept', async t => {
  const { dir, config } = setup(t)
  const json = await downloadText()
  const file = await writeDownload(dir, 'HelseId.json', json)

  const result = await run({ file, configPath: config, tenant: 'granfjelldal' })

  t.equal(result.code, exitCodes.ok, result.err)
  t.equal(await readFile(config, 'utf8'), configText.replace('client: keys/old-granfjelldal.json', 'client: keys/granfjelldal.json'), 'exactly one value changed')
  t.match(result.out, 'config: tenants.granfjelldal.client: keys/old-granfjelldal.json → keys/granfjelldal.json')
  t.match(result.out, 'tenant granfjelldal: apis persontjenesten, organization child 999977776')
  t.equal(await readFile(join(dir, 'keys', 'granfjelldal.json'), 'utf8'), json)
  const checkOutput: string[] = []
  t.equal(await runCheck(config, line => { checkOutput.push(line) }), exitCodes.ok, 'check passes on the result')
  t.match(checkOutput.join('\n'), `granfjelldal: client ${clientId}, apis persontjenesten, organization child 999977776`)

  const again = await run({ file, configPath: config, tenant: 'granfjelldal' })
  t.equal(again.code, exitCodes.ok, 'importing the same download again is fine')
  t.match(again.out, 'unchanged, it already held this download')
  t.match(again.out, `config: ${config} unchanged`)
  t.same((await readdir(join(dir, 'keys'))).sort(), ['granfjelldal.json'], 'no backup for an identical file')
})

t.test('a key file of another client is replaced only with --force, keeping a .bak', async t => {
  const { dir, config } = setup(t)
  const first = await writeDownload(dir, 'first.json', await downloadText({ clientId: 'first-client' }))
  t.equal((await run({ file: first, configPath: config })).code, exitCodes.ok)
  const firstBytes = await readFile(join(dir, 'keys', 'fjordvik.json'), 'utf8')
  const second = await writeDownload(dir, 'second.json', await downloadText({ clientId: 'second-client', jwk: await privateJwk('RSA-4096') as Record<string, unknown> }))
  const before = await snapshot(dir)

  const refused = await run({ file: second, configPath: config })
  t.equal(refused.code, exitCodes.config)
  t.match(refused.err, 'holds client first-client, not second-client; nothing was written. To replace it, run again with --force')
  t.same(await snapshot(dir), before)

  const forced = await run({ file: second, configPath: config, force: true })
  t.equal(forced.code, exitCodes.ok, forced.err)
  const backup = join(dir, 'keys', 'fjordvik.json.20250304T050607Z.bak')
  t.match(forced.out, `previous key file kept as: ${backup}`)
  t.equal(await readFile(backup, 'utf8'), firstBytes, 'the old key is kept')
  if (isPosix) t.equal((await stat(backup)).mode & 0o777, 0o600, 'backup mode 0600')
  t.match(await readFile(join(dir, 'keys', 'fjordvik.json'), 'utf8'), 'second-client')
  t.match(forced.out, 'RSA 4096 bits')
})

t.test('a new download for the same client replaces its key without --force and keeps the old one', async t => {
  const { dir, config } = setup(t)
  const first = await writeDownload(dir, 'first.json', await downloadText())
  t.equal((await run({ file: first, configPath: config })).code, exitCodes.ok)
  const renewed = await writeDownload(dir, 'renewed.json', await downloadText({ jwk: await privateJwk('P-256') as Record<string, unknown> }))

  const result = await run({ file: renewed, configPath: config })

  t.equal(result.code, exitCodes.ok, result.err)
  t.match(result.out, 'replaced, mode 0600')
  t.same((await readdir(join(dir, 'keys'))).sort(), ['fjordvik.json', 'fjordvik.json.20250304T050607Z.bak'])
})

t.test('through main(): the injected prompt, and usage errors', async t => {
  const { dir, config } = setup(t)
  const { file, json } = await zipDownload(dir, 'zipcrypto')
  const out: string[] = []
  const err: string[] = []
  const prompts: string[] = []
  const io: CliIo = {
    out: line => { out.push(line) },
    err: line => { err.push(line) },
    untilStopped: async () => {},
    readSecret: async prompt => { prompts.push(prompt); return password }
  }
  const saved = process.env[zipPasswordEnv]
  delete process.env[zipPasswordEnv]
  t.teardown(() => { if (saved !== undefined) process.env[zipPasswordEnv] = saved })

  const code = await main(['import', file, '--tenant', 'fjordvik', '--config', config], io)

  t.equal(code, exitCodes.ok, err.join('\n'))
  t.equal(prompts.length, 1)
  t.equal(await readFile(join(dir, 'keys', 'fjordvik.json'), 'utf8'), json)

  for (const [argv, message] of [
    [['import', '--tenant', 'x', '--config', config], 'import needs FILE --tenant NAME --config FILE'],
    [['import', file, '--config', config], 'import needs FILE --tenant NAME --config FILE'],
    [['import', file, 'extra', '--tenant', 'x', '--config', config], 'unexpected argument "extra"'],
    [['import', file, '--tenant', 'Fjord Vik', '--config', config], '--tenant "Fjord Vik": 1-63 lowercase letters'],
    [['import', file, '--tenant', 'x', '--config', config, '--child', '99997777'], '--child takes an organisation number of 9 digits'],
    [['import', file, '--tenant', 'x', '--config', config, '--show-token'], 'import: Unknown option \'--show-token\'']
  ] as const) {
    err.length = 0
    t.equal(await main(argv, io), exitCodes.usage, argv.join(' '))
    t.match(err.join('\n'), message)
  }
})

t.test('parseImportArgs: repeated and comma-separated --api', async t => {
  const parsed = parseImportArgs(['import', 'dl.zip', '--tenant', 'x', '--config', 'c.yaml', '--api', 'a', '--api', 'b, c', '--force'])
  t.same(parsed, { file: 'dl.zip', configPath: 'c.yaml', tenant: 'x', apis: ['a', 'b', 'c'], force: true })
})

t.test('a config changed during the import: the key store is rolled back, the other change kept', async t => {
  const { dir, config } = setup(t)
  const first = await writeDownload(dir, 'first.json', await downloadText({ clientId: 'first-client' }))
  t.equal((await run({ file: first, configPath: config })).code, exitCodes.ok)
  const afterFirst = await readFile(config, 'utf8')
  const keysBefore = await snapshot(join(dir, 'keys'))
  const zip = await makeZip({ 'HelseId.json': await downloadText({ clientId: 'second-client' }) }, 'aes-256', password)
  const file = await writeDownload(dir, 'second.zip', zip)
  const out: string[] = []
  const err: string[] = []

  const code = await runImport({ file, configPath: config, tenant: 'fjordvik', force: true, child: '999977775' }, {
    out: line => { out.push(line) },
    err: line => { err.push(line) },
    env: {},
    // Someone edits the config while the password is being typed.
    readSecret: async () => { await writeFile(config, `${afterFirst}# edited meanwhile\n`); return password }
  })

  t.equal(code, exitCodes.failure)
  t.match(err.join('\n'), /writing failed \(.*was changed by someone else during the import; run the import again\); nothing was changed/)
  t.same(await snapshot(join(dir, 'keys')), keysBefore, 'the old key file is back and the .bak is gone')
  t.equal(await readFile(config, 'utf8'), `${afterFirst}# edited meanwhile\n`, 'the other edit is not overwritten')
})

t.test('an unreadable or invalid config: exit 78, nothing written', async t => {
  const { dir, config } = setup(t, 'helseid: { environment: test\napis: {}\n')
  const file = await writeDownload(dir, 'HelseId.json', await downloadText())
  const before = await snapshot(dir)

  const invalid = await run({ file, configPath: config })
  t.equal(invalid.code, exitCodes.config)
  t.match(invalid.err, /\(yaml\) line \d+, column \d+/)

  const missing = await run({ file, configPath: join(dir, 'nope.yaml') })
  t.equal(missing.code, exitCodes.config)
  t.match(missing.err, `cannot read the config file ${join(dir, 'nope.yaml')}: ENOENT`)
  t.same(await snapshot(dir), before)
})
