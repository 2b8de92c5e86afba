// The command line through main() with captured output, plus one smoke test of the real binary.

import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { calculateJwkThumbprint } from 'jose'
import { usage } from '../../src/cli.ts'
import { runCli } from '../helpers/run-cli.ts'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { demoNin } from '../../src/demo/synthetic-persons.ts'
import { privateJwk, privateValues, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'

const bin = fileURLToPath(new URL('../../src/bin.js', import.meta.url))
const scope = 'nhn:hgd-persontjenesten-api/restricted-access'

/** A config file for one tenant whose Selvbetjening download names `issuer`; returns its path. */
async function writeTenantConfig (t: Test, issuer: string, clientId: string): Promise<string> {
  const dir = t.testdir({
    'broker.yaml': `helseid: { issuer: "${issuer}" }
apis:
  persontjenesten: { url: "http://127.0.0.1:9", scopes: [${scope}] }
tenants:
  granfjelldal:
    client: keys/granfjelldal.json
    organization: { child: "999977776" }
    apis: [persontjenesten]
`,
    keys: {}
  })
  await writeJson(dir, 'keys/granfjelldal.json', selvbetjeningDownload(await privateJwk('RSA-2048'), { authority: issuer, clientId }))
  return join(dir, 'broker.yaml')
}

/** A local authority that knows client `gf-client` with the fixture key (or `withKey` instead). */
async function authorityFor (t: Test, withKey?: 'another key'): Promise<FakeAuthority> {
  const authority = await startFakeAuthority()
  t.teardown(async () => { await authority.close() })
  const jwk = publicOnly(withKey === undefined ? await privateJwk('RSA-2048') : await privateJwk('P-256'))
  authority.registerClient({ clientId: 'gf-client', publicJwks: [{ ...jwk, kid: await calculateJwkThumbprint(jwk) }], scopes: [scope], organization: '999977774' })
  return authority
}

t.test('usage errors exit 64 with the usage text; --help exits 0', async t => {
  const none = await runCli([])
  const help = await runCli(['--help'])
  const unknown = await runCli(['frobnicate'])
  const serve = await runCli(['serve'])
  const badOption = await runCli(['check', '--no-such-option'])
  const badPort = await runCli(['demo', '--proxy-port', 'http'])

  t.equal(none.code, 64)
  t.match(none.err, 'no command given')
  t.match(none.err, usage)
  t.equal(help.code, 0)
  t.equal(help.out, usage)
  t.equal(help.err, '')
  t.equal(unknown.code, 64)
  t.match(unknown.err, 'unknown command "frobnicate"')
  t.equal(serve.code, 64)
  t.match(serve.err, 'serve needs --config FILE')
  t.equal(badOption.code, 64)
  t.equal(badPort.code, 64)
})

t.test('check: a missing file is 78 naming it; a valid config with its key is 0', async t => {
  const missing = await runCli(['check', '--config', '/nonexistent/helseid-broker.yaml'])
  const configPath = await writeTenantConfig(t, 'http://127.0.0.1:4444', 'gf-client')
  const valid = await runCli(['check', '--config', configPath])

  t.equal(missing.code, 78)
  t.match(missing.err, '/nonexistent/helseid-broker.yaml', 'problems go to stderr')
  t.equal(missing.out, '')
  t.equal(valid.code, 0, valid.out)
  t.match(valid.out, `${configPath}: ok`)
  t.match(valid.out, 'granfjelldal: client gf-client, apis persontjenesten, organization child 999977776')
  for (const secret of privateValues(await privateJwk('RSA-2048'))) t.notOk(valid.out.includes(secret.slice(0, 16)), 'no private key member printed')
})

t.test('token: prints the decoded claims, and the token itself only with --show-token', async t => {
  const authority = await authorityFor(t)
  const configPath = await writeTenantConfig(t, authority.issuer, 'gf-client')
  const args = ['token', '--config', configPath, '--tenant', 'granfjelldal', '--api', 'persontjenesten']

  const plain = await runCli(args)
  const shown = await runCli([...args, '--show-token'])

  t.equal(plain.code, 0, plain.err)
  const summary = JSON.parse(plain.out) as { scopes: string[], dpopKeyThumbprint: string, header: Record<string, unknown>, claims: Record<string, unknown> }
  t.same(summary.scopes, [scope])
  t.match(summary.header, { typ: 'at+jwt' })
  t.match(summary.claims, {
    iss: authority.issuer,
    client_id: 'gf-client',
    cnf: { jkt: summary.dpopKeyThumbprint },
    'helseid://claims/client/claims/orgnr_parent': '999977774',
    'helseid://claims/client/claims/orgnr_child': '999977776'
  })
  const [first, second] = authority.issuedTokens
  t.ok(first !== undefined && second !== undefined, 'one token per run')
  t.notOk(plain.out.includes(first ?? '-') || plain.err.includes(first ?? '-'), 'the token is not printed')
  t.notMatch(plain.out, /eyJ[\w-]+\.eyJ/, 'nothing token-shaped is printed')
  t.equal(shown.code, 0)
  t.equal(shown.out.split('\n').at(-1), second, '--show-token prints the token on the last line')
})

t.test('token: an unknown tenant is 64; a client HelseID refuses is 1 with BROKER_IDP_REJECTED', async t => {
  const authority = await authorityFor(t, 'another key')
  const configPath = await writeTenantConfig(t, authority.issuer, 'gf-client')

  const unknownTenant = await runCli(['token', '--config', configPath, '--tenant', 'nosuch', '--api', 'persontjenesten'])
  const unknownApi = await runCli(['token', '--config', configPath, '--tenant', 'granfjelldal', '--api', 'nosuch'])
  const refused = await runCli(['token', '--config', configPath, '--tenant', 'granfjelldal', '--api', 'persontjenesten'])
  const incomplete = await runCli(['token', '--config', configPath, '--tenant', 'granfjelldal'])

  t.equal(unknownTenant.code, 64)
  t.match(unknownTenant.err, 'no tenant named "nosuch"')
  t.match(unknownTenant.err, 'granfjelldal')
  t.equal(unknownApi.code, 64)
  t.equal(refused.code, 1)
  t.match(refused.err, 'BROKER_IDP_REJECTED')
  t.equal(refused.out, '')
  t.ok(authority.tokenRequests.some(request => request.outcome === 'invalid_client'))
  t.equal(incomplete.code, 64)
})

/** Collects a stream's text; resolves `until` once the text contains `marker`. */
function collect (stream: NodeJS.ReadableStream, marker?: string): { text: () => string, until: Promise<void> } {
  let text = ''
  let found: () => void = () => {}
  const until = new Promise<void>(resolve => { found = resolve })
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    text += chunk
    if (marker !== undefined && text.includes(marker)) found()
  })
  return { text: () => text, until }
}

t.test('the real binary: demo answers the printed get-by-nin example and stops cleanly on SIGTERM', async t => {
  const child = spawn(process.execPath, [bin, 'demo', '--proxy-port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const stdout = collect(child.stdout, 'Stop with Ctrl-C')
  const stderr = collect(child.stderr)

  await Promise.race([stdout.until, exited.then(() => { throw new Error(`demo exited early: ${stderr.text()}`) })])

  const proxy = /broker proxy listener\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(stdout.text())
  t.ok(proxy !== null && Number(proxy[2]) > 0, 'the printed proxy URL carries the real port')
  const example = /curl -s '([^']*get-by-nin[^']*)' --data-urlencode '(nin=\d{11})'/.exec(stdout.text())
  t.ok(example?.[1]?.startsWith(proxy?.[1] ?? '-'), 'the printed example calls the proxy listener')
  const response = await fetch(example?.[1] ?? '', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: example?.[2] ?? ''
  })
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /json/)
  t.match(await response.json(), { id: String })

  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  const [code, signal] = await exited
  clearTimeout(timer)
  t.equal(signal, null, 'not killed')
  t.equal(code, 0, 'exit 0 after SIGTERM')
  t.notOk(stderr.text().includes(demoNin), 'the identity number is in no log line')
})

t.test('the real binary: check on a missing config exits 78', async t => {
  const child = spawn(process.execPath, [bin, 'check', '--config', '/nonexistent.yaml'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const stderr = collect(child.stderr)
  const [code] = await once(child, 'close') as [number | null]

  t.equal(code, 78)
  t.match(stderr.text(), '/nonexistent.yaml')
})
