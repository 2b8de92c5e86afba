// `keys status`: a table of every tenant's key and its expiry from Selvbetjening; exit 1 when one is unknown or expired.

import t, { type Test } from 'tap'
import { join } from 'node:path'
import { calculateJwkThumbprint, type JWK } from 'jose'
import { runCli } from '../helpers/run-cli.ts'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { selvbetjeningClientScope, startFakeSelvbetjening, type FakeSelvbetjening } from '../../src/demo/fake-selvbetjening.ts'
import { privateJwk, privateValues, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'

const scope = 'nhn:hgd-persontjenesten-api/restricted-access'
const dayMs = 86_400_000

interface Setup {
  readonly authority: FakeAuthority
  readonly selvbetjening: FakeSelvbetjening
  readonly configPath: string
  readonly dir: string
  readonly gfKid: string
  readonly supplierKid: string
}

/** Three tenants: granfjelldal and nordvik share one client file (RSA), fjordvik uses a supplier client (EC P-256). */
async function setup (t: Test, options: { supplierScopes?: readonly string[] } = {}): Promise<Setup> {
  const authority = await startFakeAuthority()
  const selvbetjening = await startFakeSelvbetjening({ authority })
  t.teardown(async () => { await Promise.all([selvbetjening.close(), authority.close()]) })
  const register = async (clientId: string, jwk: JWK, extra: { multiTenant?: boolean, scopes?: readonly string[] }): Promise<string> => {
    const publicJwk = publicOnly(jwk)
    const kid = await calculateJwkThumbprint(publicJwk)
    authority.registerClient({ clientId, publicJwks: [{ ...publicJwk, kid }], scopes: extra.scopes ?? [scope, selvbetjeningClientScope], organization: '999977774', ...(extra.multiTenant === true ? { multiTenant: true } : {}) })
    return kid
  }
  const gfKid = await register('gf-client', await privateJwk('RSA-2048'), {})
  const supplierKid = await register('supplier', await privateJwk('P-256'), { multiTenant: true, ...(options.supplierScopes === undefined ? {} : { scopes: options.supplierScopes }) })
  const dir = t.testdir({
    'broker.yaml': `helseid: { issuer: "${authority.issuer}", selvbetjeningUrl: "${selvbetjening.origin}" }
apis:
  persontjenesten: { url: "http://127.0.0.1:9", scopes: [${scope}] }
tenants:
  granfjelldal: { client: keys/gf.json, organization: { child: "999977776" }, apis: [persontjenesten] }
  nordvik: { client: keys/gf.json, apis: [persontjenesten] }
  fjordvik: { client: keys/supplier.json, organization: { parent: "999977774" }, apis: [persontjenesten] }
keys: { warnDays: 30 }
`,
    keys: {}
  })
  await writeJson(dir, 'keys/gf.json', selvbetjeningDownload(await privateJwk('RSA-2048'), { authority: authority.issuer, clientId: 'gf-client' }))
  await writeJson(dir, 'keys/supplier.json', selvbetjeningDownload(await privateJwk('P-256'), { authority: authority.issuer, clientId: 'supplier' }))
  return { authority, selvbetjening, configPath: join(dir, 'broker.yaml'), dir, gfKid, supplierKid }
}

function rowOf (out: string, tenant: string): string[] {
  return out.split('\n').find(line => line.startsWith(`${tenant} `))?.split(/\s{2,}/) ?? []
}

t.test('a table per tenant: key id, algorithm, size, file, expiry and days left; exit 0', async t => {
  const env = await setup(t)

  const result = await runCli(['keys', 'status', '--config', env.configPath])

  t.equal(result.code, 0, result.err)
  t.equal(result.err, '')
  const lines = result.out.split('\n')
  t.equal(lines[0], `Key expiry from ${env.selvbetjening.origin} (warn below 30 days)`)
  t.match(lines[1], /^TENANT\s+CLIENT ID\s+KEY ID\s+ALG\s+BITS\s+FILE\s+EXPIRES\s+DAYS LEFT\s+STATE$/)
  const [gfSecret] = env.selvbetjening.secrets('gf-client')
  const granfjelldal = rowOf(result.out, 'granfjelldal')
  t.same(granfjelldal.slice(0, 6), ['granfjelldal', 'gf-client', env.gfKid, 'PS256', '2048', join(env.dir, 'keys/gf.json')])
  t.equal(granfjelldal[6], gfSecret?.expiration.replace('.000Z', 'Z'))
  t.match(granfjelldal[7], /^7(29|30)$/)
  t.equal(granfjelldal[8], 'ok')
  t.same(rowOf(result.out, 'nordvik').slice(2, 8), granfjelldal.slice(2, 8), 'the tenant sharing the file shows the same key')
  t.same(rowOf(result.out, 'fjordvik').slice(0, 5), ['fjordvik', 'supplier', env.supplierKid, 'ES256', '256'])
  t.same(env.selvbetjening.received.map(request => request.clientId).sort(), ['gf-client', 'supplier'], 'one check per key, not per tenant')
  for (const value of [...privateValues(await privateJwk('RSA-2048')), ...privateValues(await privateJwk('P-256'))]) {
    t.notOk(result.out.includes(value.slice(0, 16)), 'no private key member printed')
  }
  t.notMatch(result.out, /eyJ[\w-]+\.eyJ/, 'no token printed')
})

t.test('a key expiring within warnDays is flagged but exits 0; an expired key exits 1', async t => {
  const env = await setup(t)

  env.selvbetjening.setExpiration('gf-client', env.gfKid, new Date(Date.now() + 10 * dayMs + 3_600_000).toISOString())
  const soon = await runCli(['keys', 'status', '--config', env.configPath])
  env.selvbetjening.setExpiration('gf-client', env.gfKid, new Date(Date.now() - dayMs).toISOString())
  const expired = await runCli(['keys', 'status', '--config', env.configPath])

  t.equal(soon.code, 0)
  t.same(rowOf(soon.out, 'granfjelldal').slice(7), ['10', 'expires soon'])
  t.equal(soon.err, `granfjelldal, nordvik: key ${env.gfKid} expires in 10 days; rotate it`)
  t.equal(expired.code, 1)
  t.equal(rowOf(expired.out, 'granfjelldal').at(-1), 'EXPIRED')
  t.equal(rowOf(expired.out, 'fjordvik').at(-1), 'ok')
  t.match(expired.err, `granfjelldal, nordvik: key ${env.gfKid} has expired; HelseID no longer accepts it`)
})

t.test('a key whose expiry cannot be read exits 1 and says why', async t => {
  const env = await setup(t, { supplierScopes: [scope] })

  const result = await runCli(['keys', 'status', '--config', env.configPath])

  t.equal(result.code, 1)
  t.same(rowOf(result.out, 'fjordvik').slice(6), ['-', '-', 'UNKNOWN'])
  t.equal(rowOf(result.out, 'granfjelldal').at(-1), 'ok')
  t.match(result.err, /^fjordvik: could not read the key's expiry: BROKER_IDP_REJECTED: .*invalid_scope \(the client's registration in Selvbetjening must include scope nhn:selvbetjening\/client\)$/)

  env.selvbetjening.setMode('unavailable')
  const down = await runCli(['keys', 'status', '--config', env.configPath])
  t.equal(down.code, 1)
  t.match(down.err, 'granfjelldal, nordvik: could not read the key\'s expiry: BROKER_SELVBETJENING_FAILED: Selvbetjening GET /v1/client-secret answered HTTP 503')
})

t.test('usage: keys needs the status subcommand and --config', async t => {
  const none = await runCli(['keys'])
  const unknown = await runCli(['keys', 'frobnicate', '--config', 'x.yaml'])
  const noConfig = await runCli(['keys', 'status'])
  const extra = await runCli(['keys', 'status', 'more', '--config', 'x.yaml'])
  const missingFile = await runCli(['keys', 'status', '--config', '/nonexistent/helseid-broker.yaml'])
  const help = await runCli(['--help'])

  t.equal(none.code, 64)
  t.match(none.err, 'keys needs a subcommand: status')
  t.equal(unknown.code, 64)
  t.match(unknown.err, 'unknown keys subcommand "frobnicate"')
  t.equal(noConfig.code, 64)
  t.match(noConfig.err, 'keys status needs --config FILE')
  t.equal(extra.code, 64)
  t.match(extra.err, 'unexpected argument "more"')
  t.equal(missingFile.code, 78)
  t.match(help.out, 'helseid-broker keys status --config FILE')
})
