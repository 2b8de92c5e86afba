// Tests for loadTenantCredentials: shared key files, client id resolution, authority checks, all issues at once.

import t from 'tap'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/parse-config.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { privateJwk, protect, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { issuesRaisedBy } from '../fixtures/config-fixtures.ts'

function configFor (dir: string, tenants: Record<string, Record<string, unknown>>, helseid: Record<string, unknown> = { environment: 'test' }): ReturnType<typeof parseConfig> {
  const withApis = Object.fromEntries(Object.entries(tenants).map(([name, tenant]) => [name, { apis: ['pt'], ...tenant }]))
  return parseConfig({ helseid, apis: { pt: { url: 'https://api.example.no', scopes: ['s'] } }, tenants: withApis }, join(dir, 'broker.yaml'))
}

t.test('tenants sharing a multi-tenant client file share one ClientKey', async t => {
  const dir = t.testdir({ keys: {} })
  await writeJson(dir, 'keys/supplier.json', selvbetjeningDownload(await privateJwk('RSA-2048'), { clientId: 'supplier-client' }))
  await writeJson(dir, 'keys/own.json', { ...await privateJwk('P-256'), kid: 'own-1' })
  const config = configFor(dir, {
    fjordvik: { client: 'keys/supplier.json', organization: { parent: '999977774', child: '999977775' } },
    granfjelldal: { client: './keys/../keys/supplier.json', organization: { parent: '999977774', child: '999977776' } },
    eigersund: { client: 'keys/own.json', clientId: 'eigersund-client' }
  })

  const credentials = await loadTenantCredentials(config)

  t.same([...credentials.keys()], ['fjordvik', 'granfjelldal', 'eigersund'])
  t.equal(credentials.get('fjordvik')?.key, credentials.get('granfjelldal')?.key, 'the same object')
  t.match(credentials.get('fjordvik'), { tenant: 'fjordvik', clientId: 'supplier-client', key: { file: join(dir, 'keys', 'supplier.json'), alg: 'PS256' } })
  t.match(credentials.get('eigersund'), { tenant: 'eigersund', clientId: 'eigersund-client', key: { kid: 'own-1', alg: 'ES256' } })
})

t.test('a config clientId equal to the file\'s is fine', async t => {
  const dir = t.testdir({})
  await writeJson(dir, 'k.json', selvbetjeningDownload(await privateJwk('RSA-2048'), { clientId: 'abc' }))

  const credentials = await loadTenantCredentials(configFor(dir, { a: { client: 'k.json', clientId: 'abc' } }))

  t.equal(credentials.get('a')?.clientId, 'abc')
})

t.test('every problem across tenants is reported in one ConfigError', async t => {
  const dir = t.testdir({ 'small.json': '{"kty":"oct","k":"c2VjcmV0"}' })
  await protect(dir, 'small.json')
  const rsa = await privateJwk('RSA-2048')
  await writeJson(dir, 'prod.json', selvbetjeningDownload(rsa, { authority: 'https://helseid-sts.nhn.no/', clientId: 'prod-client' }))
  await writeJson(dir, 'test.json', selvbetjeningDownload(rsa, { clientId: 'test-client' }))
  await writeJson(dir, 'jwk.json', rsa)
  const config = configFor(dir, {
    missing: { client: 'nope.json' },
    wrongauthority: { client: 'prod.json' },
    wrongclient: { client: 'test.json', clientId: 'other-client' },
    noclient: { client: 'jwk.json' },
    symmetric: { client: 'small.json' },
    alsosymmetric: { client: 'small.json' }
  })

  const issues = await issuesRaisedBy(loadTenantCredentials(config))

  t.same(issues, [
    `tenants.missing.client: ${join(dir, 'nope.json')}: cannot read the file: ENOENT`,
    'tenants.wrongauthority.client: the file is for https://helseid-sts.nhn.no but the broker\'s issuer is https://helseid-sts.test.nhn.no',
    `tenants.wrongclient.clientId: other-client differs from the client id test-client in ${join(dir, 'test.json')}; remove clientId or fix it`,
    `tenants.noclient.clientId: required because ${join(dir, 'jwk.json')} names no client id`,
    `tenants.symmetric.client: ${join(dir, 'small.json')}: holds a symmetric (kty "oct") key; HelseID needs an RSA or EC private key`,
    `tenants.alsosymmetric.client: ${join(dir, 'small.json')}: holds a symmetric (kty "oct") key; HelseID needs an RSA or EC private key`
  ])
})

t.test('the authority check uses the configured issuer, custom ones included', async t => {
  const dir = t.testdir({})
  await writeJson(dir, 'k.json', selvbetjeningDownload(await privateJwk('P-256'), { authority: 'http://127.0.0.1:4000/connect/token' }))

  const credentials = await loadTenantCredentials(configFor(dir, { a: { client: 'k.json' } }, { issuer: 'http://127.0.0.1:4000/' }))

  t.equal(credentials.get('a')?.key.authority, 'http://127.0.0.1:4000')
})
