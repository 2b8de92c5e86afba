// Tests for loadCallerSecrets: hashes from the config, secret files (content rules, POSIX permissions), every issue at once.

import t from 'tap'
import { createHash } from 'node:crypto'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/parse-config.ts'
import { loadCallerSecrets } from '../../src/security/caller-secrets.ts'
import { hashSecret, verifySecretHash } from '../../src/security/secret-hash.ts'
import { issuesRaisedBy } from '../fixtures/config-fixtures.ts'

const strict = { allowInsecurePermissions: false }

function configWith (dir: string, callers: Record<string, Record<string, unknown>> | undefined): ReturnType<typeof parseConfig> {
  const withTenants = callers === undefined ? undefined : Object.fromEntries(Object.entries(callers).map(([name, caller]) => [name, { tenants: '*', ...caller }]))
  return parseConfig({
    helseid: { environment: 'test' },
    apis: { pt: { url: 'https://api.example.no', scopes: ['s'] } },
    tenants: { a: { client: 'k.json', apis: ['pt'] } },
    ...(withTenants === undefined ? {} : { callers: withTenants })
  }, join(dir, 'broker.yaml'))
}

async function writeSecret (dir: string, name: string, text: string, mode = 0o600): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, text, { mode })
  await chmod(file, mode)
  return file
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

t.test('no callers: an empty map', async t => {
  const secrets = await loadCallerSecrets(configWith(t.testdir({}), undefined), strict)

  t.equal(secrets.size, 0)
})

t.test('hashes are parsed; secret files become the SHA-256 of their one line', async t => {
  const dir = t.testdir({ secrets: {} })
  const hash = await hashSecret('epj-secret-0123456789')
  await writeSecret(dir, 'secrets/dips.secret', 'dips-secret-0123456789\n')
  await writeSecret(dir, 'secrets/cgm.secret', '\uFEFFcgm-secret-0123456789\r\n')
  await writeSecret(dir, 'secrets/plain.secret', 'no-newline-at-the-end')

  const secrets = await loadCallerSecrets(configWith(dir, {
    epj: { secretHash: hash },
    dips: { secretFile: 'secrets/dips.secret' },
    cgm: { secretFile: 'secrets/cgm.secret' },
    plain: { secretFile: join(dir, 'secrets/plain.secret') }
  }), strict)

  t.same([...secrets.keys()], ['epj', 'dips', 'cgm', 'plain'])
  const epj = secrets.get('epj')
  t.equal(epj?.kind, 'hash')
  if (epj?.kind === 'hash') t.equal(await verifySecretHash('epj-secret-0123456789', epj.hash), true)
  t.same(secrets.get('dips'), { kind: 'plain', sha256: sha256('dips-secret-0123456789') })
  t.same(secrets.get('cgm'), { kind: 'plain', sha256: sha256('cgm-secret-0123456789') })
  t.same(secrets.get('plain'), { kind: 'plain', sha256: sha256('no-newline-at-the-end') })
})

t.test('every unusable secret file is reported at once, with its path, never with its contents', async t => {
  const dir = t.testdir({})
  const contents = {
    'empty.secret': '\n',
    'short.secret': 'kort-hemmeleg\n',
    'lines.secret': 'first-line-0123456789\nsecond-line-0123456789\n',
    'spaces.secret': ' padded-secret-0123456789 \n',
    'control.secret': 'tab\there-0123456789012\n',
    'open.secret': 'open-secret-0123456789\n'
  }
  for (const [name, text] of Object.entries(contents)) await writeSecret(dir, name, text, name === 'open.secret' ? 0o644 : 0o600)
  const config = configWith(dir, {
    empty: { secretFile: 'empty.secret' },
    short: { secretFile: 'short.secret' },
    lines: { secretFile: 'lines.secret' },
    spaces: { secretFile: 'spaces.secret' },
    control: { secretFile: 'control.secret' },
    open: { secretFile: 'open.secret' },
    missing: { secretFile: 'missing.secret' },
    folder: { secretFile: '.' }
  })

  const issues = await issuesRaisedBy(loadCallerSecrets(config, strict))

  const file = (name: string): string => join(dir, name)
  t.same(issues, [
    `callers.empty.secretFile: ${file('empty.secret')} is empty; put the secret in it (helseid-broker hash-secret --generate makes one)`,
    `callers.short.secretFile: the secret in ${file('short.secret')} is too short (under 16 characters); use helseid-broker hash-secret --generate for a strong one`,
    `callers.lines.secretFile: ${file('lines.secret')} holds more than one line; it must hold only the secret`,
    `callers.spaces.secretFile: ${file('spaces.secret')} has spaces around the secret; remove them`,
    `callers.control.secretFile: ${file('control.secret')} holds a control character; the secret must be printable text`,
    `callers.open.secretFile: ${file('open.secret')} is readable by group or others (mode 0644); run: chmod 600 ${file('open.secret')} — or start with --allow-insecure-key-permissions`,
    `callers.missing.secretFile: ${file('missing.secret')}: cannot read the file: ENOENT`,
    `callers.folder.secretFile: ${dir}: cannot read the file: EISDIR`
  ])
  for (const text of Object.values(contents)) {
    const secret = text.trim().split('\n')[0] ?? ''
    if (secret.length > 4) t.notOk(issues.some(issue => issue.includes(secret)), 'no secret in any issue')
  }
})

t.test('--allow-insecure-key-permissions lets a group-readable secret file through; on Windows no mode is checked', async t => {
  const dir = t.testdir({})
  await writeSecret(dir, 'open.secret', 'open-secret-0123456789\n', 0o640)
  const config = configWith(dir, { open: { secretFile: 'open.secret' } })

  t.same(await issuesRaisedBy(loadCallerSecrets(config, strict)), [
    `callers.open.secretFile: ${join(dir, 'open.secret')} is readable by group or others (mode 0640); run: chmod 600 ${join(dir, 'open.secret')} — or start with --allow-insecure-key-permissions`
  ])
  t.same((await loadCallerSecrets(config, { allowInsecurePermissions: true })).get('open'), { kind: 'plain', sha256: sha256('open-secret-0123456789') })
  t.equal((await loadCallerSecrets(config, { allowInsecurePermissions: false, platform: 'win32' })).size, 1)
})
