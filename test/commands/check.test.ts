// Tests for the check command: a summary and exit 0, or every problem and exit 78, never key material.

import t from 'tap'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCheck } from '../../src/commands/check.ts'
import { exitCodes } from '../../src/errors.ts'
import { privateJwk, privateValues, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'

const goodConfig = `
helseid: { environment: test }
listen: { proxy: "[::1]:8480" }
apis:
  persontjenesten:
    url: https://api.persontjenesten.test.nhn.no
    scopes: [nhn:hgd-persontjenesten-api/restricted-access]
    headers: { Api-Version: "3" }
tenants:
  fjordvik:
    client: keys/supplier.json
    organization: { parent: "999977774", child: "999977775" }
    apis: [persontjenesten]
  granfjelldal:
    client: keys/granfjelldal.json
    clientId: granfjelldal-client
    apis: [persontjenesten]
`

async function run (configPath: string): Promise<{ code: number, output: string }> {
  const lines: string[] = []
  const code = await runCheck(configPath, line => { lines.push(line) })
  return { code, output: lines.join('\n') }
}

t.test('a valid config and keys: exit 0 with a summary', async t => {
  const dir = t.testdir({ 'broker.yaml': goodConfig, keys: {} })
  const rsa = await privateJwk('RSA-2048')
  const ec = await privateJwk('P-384')
  await writeJson(dir, 'keys/supplier.json', selvbetjeningDownload(rsa, { clientId: 'supplier-client' }))
  await writeJson(dir, 'keys/granfjelldal.json', { ...ec, kid: 'gf-1' })

  const { code, output } = await run(join(dir, 'broker.yaml'))

  t.equal(code, exitCodes.ok)
  t.match(output, `${join(dir, 'broker.yaml')}: ok`)
  t.match(output, 'helseid: https://helseid-sts.test.nhn.no (test), selvbetjening https://api.selvbetjening.test.nhn.no')
  t.match(output, 'listen: proxy [::1]:8480, admin 127.0.0.1:8481')
  t.match(output, 'egress: direct')
  t.match(output, 'persontjenesten: https://api.persontjenesten.test.nhn.no scopes nhn:hgd-persontjenesten-api/restricted-access; headers Api-Version')
  t.match(output, 'fjordvik: client supplier-client, apis persontjenesten, organization parent 999977774 child 999977775')
  t.match(output, /key kid [\w-]{43}, PS256, RSA 2048 bits from .*supplier\.json/)
  t.match(output, 'granfjelldal: client granfjelldal-client, apis persontjenesten')
  t.match(output, 'key kid gf-1, ES384, EC P-384')
  for (const secret of [...privateValues(rsa), ...privateValues(ec)]) t.notOk(output.includes(secret.slice(0, 16)), 'no private key member in the output')
})

t.test('config problems: exit 78 with every problem and its path', async t => {
  const dir = t.testdir({
    'broker.yaml': 'helseid: { environment: staging }\napis: {}\ntenants:\n  x: { client: k.json, organisation: {}, apis: [pt] }\n'
  })

  const { code, output } = await run(join(dir, 'broker.yaml'))

  t.equal(code, exitCodes.config)
  t.same(output.split('\n'), [
    `${join(dir, 'broker.yaml')}: 4 problems`,
    '  helseid.environment: expected one of prod | test, got "staging"',
    '  apis: at least one API is required',
    '  tenants.x.organisation: unknown key; did you mean "organization"?',
    '  tenants.x.apis[0]: no API named "pt" in apis'
  ])
})

t.test('key problems: exit 78, every tenant listed, no key material printed', async t => {
  const dir = t.testdir({ 'broker.yaml': goodConfig, keys: {} })
  const rsa = await privateJwk('RSA-2048')
  await writeJson(dir, 'keys/supplier.json', selvbetjeningDownload({ ...rsa, alg: 'ES256' }, { authority: 'https://helseid-sts.nhn.no' }))
  await writeFile(join(dir, 'keys', 'granfjelldal.json'), JSON.stringify(rsa).slice(0, -20), { mode: 0o600 })

  const { code, output } = await run(join(dir, 'broker.yaml'))

  t.equal(code, exitCodes.config)
  t.match(output, `${join(dir, 'broker.yaml')}: 2 problems`)
  t.match(output, '  tenants.fjordvik.client: ')
  t.match(output, 'privateJwk has alg "ES256", which does not fit an RSA key')
  t.match(output, `  tenants.granfjelldal.client: ${join(dir, 'keys', 'granfjelldal.json')}: is not valid JSON`)
  for (const secret of privateValues(rsa)) t.notOk(output.includes(secret.slice(0, 16)), 'no private key member in the output')
})

t.test('a missing config file: exit 78 naming the file', async t => {
  const dir = t.testdir({})

  const { code, output } = await run(join(dir, 'absent.yaml'))

  t.equal(code, exitCodes.config)
  t.match(output, `(file): cannot read ${join(dir, 'absent.yaml')}: ENOENT`)
})

const configWithCallers = `
helseid: { environment: test }
listen: { proxy: "0.0.0.0:8480", hostnames: [epj-broker.kommune.local] }
callers:
  epj:
    secretFile: secrets/epj.secret
    tenants: [granfjelldal]
    apis: [persontjenesten]
    allow: ["GET /api/v3/restricted-access/person/*"]
    rateLimit: { requestsPerSecond: 20, burst: 40 }
  dips:
    secretHash: "scrypt$16384$8$1$1M6b1lT9Qk3xwrTRgmJmMA$Yers8jjnupk3KcM6BuKVfOFRdwMwQkxsAqGqrE6wB6c"
    tenants: "*"
apis:
  persontjenesten:
    url: https://api.persontjenesten.test.nhn.no
    scopes: [nhn:hgd-persontjenesten-api/restricted-access]
    allow: ["GET /api/v3/restricted-access/**"]
tenants:
  granfjelldal:
    client: keys/granfjelldal.json
    clientId: granfjelldal-client
    apis: [persontjenesten]
limits: { maxBodyBytes: 65536 }
browser: { allowedOrigins: ["https://epj.kommune.no"] }
audit: { file: "-" }
`

t.test('callers, limits, browser and audit are summarised; secret files are checked', async t => {
  const dir = t.testdir({ 'broker.yaml': configWithCallers, keys: {}, secrets: {} })
  await writeJson(dir, 'keys/granfjelldal.json', { ...await privateJwk('P-256'), kid: 'gf-1' })
  await writeFile(join(dir, 'secrets', 'epj.secret'), 'epj-secret-0123456789\n', { mode: 0o600 })

  const { code, output } = await run(join(dir, 'broker.yaml'))

  t.equal(code, exitCodes.ok, output)
  t.match(output, 'listen: proxy 0.0.0.0:8480, admin 127.0.0.1:8481, host names epj-broker.kommune.local')
  t.match(output, 'limits: body 65536 bytes, headers 16384 bytes, request 60000 ms, idle 30000 ms, 256 upstream calls at once, 100 requests/s (burst 200) per caller')
  t.match(output, 'browser: requests from https://epj.kommune.no are let through')
  t.match(output, 'audit: stdout')
  t.match(output, `  epj: tenants granfjelldal; apis persontjenesten; secret file ${join(dir, 'secrets', 'epj.secret')}; 20 requests/s (burst 40); allow GET /api/v3/restricted-access/person/*`)
  t.match(output, '  dips: tenants all; apis all of its tenants\'; secret hash')
  t.match(output, 'persontjenesten: https://api.persontjenesten.test.nhn.no scopes nhn:hgd-persontjenesten-api/restricted-access; allow GET /api/v3/restricted-access/**')
  t.notOk(output.includes('epj-secret-0123456789'), 'the secret is not printed')
})

t.test('open key and secret files: every one listed at once; --allow-insecure-key-permissions accepts them', async t => {
  const dir = t.testdir({ 'broker.yaml': configWithCallers, keys: {}, secrets: {} })
  const keyFile = await writeJson(dir, 'keys/granfjelldal.json', { ...await privateJwk('P-256'), kid: 'gf-1' }, 0o644)
  const secretFile = join(dir, 'secrets', 'epj.secret')
  await writeFile(secretFile, 'epj-secret-0123456789\n')
  await chmod(secretFile, 0o640)
  const lines: string[] = []

  const refused = await run(join(dir, 'broker.yaml'))
  const allowed = await runCheck(join(dir, 'broker.yaml'), line => { lines.push(line) }, line => { lines.push(line) }, { allowInsecurePermissions: true })

  t.equal(refused.code, exitCodes.config)
  t.same(refused.output.split('\n'), [
    `${join(dir, 'broker.yaml')}: 2 problems`,
    `  tenants.granfjelldal.client: ${keyFile} is readable by group or others (mode 0644); run: chmod 600 ${keyFile} — or start with --allow-insecure-key-permissions`,
    `  callers.epj.secretFile: ${secretFile} is readable by group or others (mode 0640); run: chmod 600 ${secretFile} — or start with --allow-insecure-key-permissions`
  ])
  t.equal(allowed, exitCodes.ok, lines.join('\n'))
})
