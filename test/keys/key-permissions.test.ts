// Tests for the POSIX permission rule on key files: group/other bits are refused (as ssh does) unless explicitly allowed.

import t from 'tap'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/parse-config.ts'
import { ConfigError } from '../../src/errors.ts'
import { InsecureKeyFileError, KeyFileError, loadClientKey } from '../../src/keys/load-client-key.ts'
import { insecurePermissions, readProtectedFile } from '../../src/keys/protected-file.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { privateJwk, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'

t.test('insecurePermissions: any group or other bit is too open; Windows is not checked', async t => {
  const file = '/k/x.json'
  const flag = '— or start with --allow-insecure-key-permissions'

  t.equal(insecurePermissions(file, 0o100600), undefined)
  t.equal(insecurePermissions(file, 0o100400), undefined)
  t.equal(insecurePermissions(file, 0o100700), undefined)
  t.equal(insecurePermissions(file, 0o100644), `is readable by group or others (mode 0644); run: chmod 600 ${file} ${flag}`)
  t.equal(insecurePermissions(file, 0o100604), `is readable by group or others (mode 0604); run: chmod 600 ${file} ${flag}`)
  t.equal(insecurePermissions(file, 0o100620), `is writable by group or others (mode 0620); run: chmod 600 ${file} ${flag}`)
  t.equal(insecurePermissions(file, 0o100601), `is accessible by group or others (mode 0601); run: chmod 600 ${file} ${flag}`)
  t.equal(insecurePermissions(file, 0o104640), `is readable by group or others (mode 4640); run: chmod 600 ${file} ${flag}`)
  t.equal(insecurePermissions(file, 0o100644, 'win32'), undefined)
  t.equal(insecurePermissions(file, 0o100644, 'linux'), `is readable by group or others (mode 0644); run: chmod 600 ${file} ${flag}`)
})

t.test('a 0644 key file is refused by loadTenantCredentials with the chmod hint; the flag lets it through', async t => {
  const dir = t.testdir({ keys: {} })
  const file = await writeJson(dir, 'keys/x.json', selvbetjeningDownload(await privateJwk('P-256'), { clientId: 'x-client' }), 0o644)
  await writeJson(dir, 'keys/ok.json', selvbetjeningDownload(await privateJwk('P-256'), { clientId: 'ok-client' }))
  const config = parseConfig({
    helseid: { environment: 'test' },
    apis: { pt: { url: 'https://api.example.no', scopes: ['s'] } },
    tenants: { x: { client: 'keys/x.json', apis: ['pt'] }, ok: { client: 'keys/ok.json', apis: ['pt'] } }
  }, join(dir, 'broker.yaml'))

  const refused = await loadTenantCredentials(config).then(() => undefined, (error: unknown) => error)
  const allowed = await loadTenantCredentials(config, { allowInsecurePermissions: true })
  const onWindows = await loadTenantCredentials(config, { platform: 'win32' })

  t.ok(refused instanceof ConfigError)
  t.same((refused as ConfigError).issues, [
    `tenants.x.client: ${file} is readable by group or others (mode 0644); run: chmod 600 ${file} — or start with --allow-insecure-key-permissions`
  ])
  t.equal(allowed.get('x')?.clientId, 'x-client')
  t.equal(allowed.get('ok')?.clientId, 'ok-client')
  t.equal(onWindows.size, 2, 'on Windows the ACL is the admin\'s job')
})

t.test('loadClientKey: InsecureKeyFileError names the file; readProtectedFile reads what it checked', async t => {
  const dir = t.testdir({})
  const file = await writeJson(dir, 'k.json', { ...await privateJwk('P-256'), kid: 'k1' }, 0o660)

  const error = await loadClientKey(file).then(() => undefined, (caught: unknown) => caught)
  const key = await loadClientKey(file, { allowInsecurePermissions: true })

  t.ok(error instanceof InsecureKeyFileError)
  t.ok(error instanceof KeyFileError)
  t.match(error, { file, reason: /^is readable by group or others \(mode 0660\); run: chmod 600 / })
  t.equal((error as Error).message, `${file} is readable by group or others (mode 0660); run: chmod 600 ${file} — or start with --allow-insecure-key-permissions`)
  t.equal(key.kid, 'k1')
  t.match(await readProtectedFile(await writeJson(dir, 'p.json', 'x')), '"x"')
})
