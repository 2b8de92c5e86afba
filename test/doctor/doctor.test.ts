// doctor over loopback: open, closed, untrusted and plain-text endpoints, direct and through a CONNECT proxy, and one real token.

import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import { main, type CliIo } from '../../src/cli.ts'
import { runDoctorCommand, type DoctorCommand } from '../../src/commands/doctor.ts'
import { startFakeAuthority, type FakeAuthority } from '../../src/demo/fake-authority.ts'
import { privateJwk, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { closedPort, startConnectProxy, startHttpsServer, startPlainServer, testPki } from './loopback-endpoints.ts'

const scope = 'nhn:hgd-persontjenesten-api/restricted-access'

interface Endpoints {
  readonly authority: FakeAuthority
  /** `127.0.0.1:<port>` of the authority (the issuer and, by default, Selvbetjening). */
  readonly issuerHost: string
  /** https with the test CA's localhost certificate. */
  readonly good: string
  /** Nothing listens. */
  readonly closed: string
  /** Plain http where https is configured. */
  readonly plain: string
  readonly caPem: string
}

async function startEndpoints (t: Test): Promise<Endpoints> {
  const pki = testPki()
  const authority = await startFakeAuthority()
  t.teardown(async () => { await authority.close() })
  const jwk = publicOnly(await privateJwk('RSA-2048'))
  authority.registerClient({ clientId: 'gf-client', publicJwks: [{ ...jwk, kid: await calculateJwkThumbprint(jwk) }], scopes: [scope], organization: '999977774' })
  return {
    authority,
    issuerHost: new URL(authority.issuer).host,
    good: `localhost:${await startHttpsServer(t, pki)}`,
    closed: `localhost:${await closedPort()}`,
    plain: `localhost:${await startPlainServer(t)}`,
    caPem: pki.caPem
  }
}

interface SceneOptions {
  readonly apis: ReadonlyArray<'good' | 'closed' | 'plain'>
  readonly caFile?: boolean
  readonly proxy?: string
  readonly clientKey?: 'registered' | 'unknown'
}

/** A config naming the authority as issuer, the chosen APIs and one tenant; returns its path. */
async function writeConfig (t: Test, endpoints: Endpoints, options: SceneOptions): Promise<string> {
  const dir = t.testdir({ keys: {} })
  writeFileSync(join(dir, 'inspection-ca.pem'), endpoints.caPem)
  const egress = [
    ...(options.proxy === undefined ? [] : [`proxy: "${options.proxy}"`]),
    ...(options.caFile === true ? ['caFile: inspection-ca.pem'] : [])
  ]
  writeFileSync(join(dir, 'broker.yaml'), [
    `helseid: { issuer: "${endpoints.authority.issuer}" }`,
    ...(egress.length === 0 ? [] : [`egress: { ${egress.join(', ')} }`]),
    'apis:',
    ...options.apis.map(name => `  ${name}: { url: "https://${endpoints[name]}", scopes: [${scope}] }`),
    'tenants:',
    `  granfjelldal: { client: keys/granfjelldal.json, organization: { child: "999977776" }, apis: [${options.apis[0] ?? ''}] }`,
    ''
  ].join('\n'))
  const key = options.clientKey === 'unknown' ? await privateJwk('P-256') : await privateJwk('RSA-2048')
  await writeJson(dir, 'keys/granfjelldal.json', selvbetjeningDownload(key, { authority: endpoints.authority.issuer, clientId: 'gf-client' }))
  return join(dir, 'broker.yaml')
}

interface Outcome {
  readonly code: number
  readonly out: string
  /** RESULT and DETAIL of the table row for `subject` and `step`. */
  readonly row: (subject: string, step: string) => { status: string, detail: string } | undefined
  /** The "What to ask IT" lines. */
  readonly askIt: readonly string[]
}

async function doctor (configPath: string, options: Partial<DoctorCommand> = {}): Promise<Outcome> {
  const out: string[] = []
  const io: CliIo = { out: line => { out.push(line) }, err: line => { out.push(line) }, untilStopped: async () => {} }
  const code = await runDoctorCommand({ configPath, env: {}, stepTimeoutMs: 2000, ...options }, io)
  const text = out.join('\n')
  const askStart = out.indexOf('What to ask IT:')
  return {
    code,
    out: text,
    row: (subject, step) => {
      const line = out.find(candidate => candidate.startsWith(`${subject} `) && new RegExp(`^\\S+(?: \\S+)?\\s+${step}\\s`).test(candidate))
      const match = line === undefined ? null : new RegExp(`^${subject.replace(/[.[\]]/g, '\\$&')}\\s+${step}\\s+(OK|WARN|FAIL|SKIP)\\s+(.*)$`).exec(line)
      return match === null ? undefined : { status: match[1] ?? '', detail: match[2] ?? '' }
    },
    askIt: askStart === -1 ? [] : out.slice(askStart + 1).map(line => line.trim())
  }
}

t.test('direct, with the inspection CA in egress.caFile: open, closed and plain-text endpoints each reported for what they are', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good', 'closed', 'plain'], caFile: true })

  const result = await doctor(configPath)

  t.equal(result.code, 1, result.out)
  t.match(result.row(endpoints.issuerHost, 'DNS'), { status: 'OK', detail: /127\.0\.0\.1/ })
  t.match(result.row(endpoints.issuerHost, 'TCP'), { status: 'OK' })
  t.match(result.row(endpoints.issuerHost, 'TLS'), { status: 'SKIP', detail: /plain http/ })
  t.match(result.row(endpoints.issuerHost, 'HTTP'), { status: 'OK', detail: /\.well-known\/openid-configuration: HTTP 200.*issuer matches/ })
  t.match(result.row(endpoints.issuerHost, 'CLOCK'), { status: 'OK' })
  t.match(result.row(endpoints.good, 'TCP'), { status: 'OK' })
  t.match(result.row(endpoints.good, 'TLS'), { status: 'OK', detail: /TLSv1\.[23]; CN=localhost issued by CN=.*test CA.*valid until \d{4}-\d\d-\d\d \(\d+ days\); trusted, name verified/ })
  t.match(result.row(endpoints.good, 'HTTP'), { status: 'OK', detail: /GET \/: HTTP 404/ })
  t.match(result.row(endpoints.closed, 'TCP'), { status: 'FAIL', detail: new RegExp(`cannot connect to ${endpoints.closed}: connection refused`) })
  t.match(result.row(endpoints.closed, 'TLS'), { status: 'SKIP', detail: 'not tried: TCP failed' })
  t.match(result.row(endpoints.plain, 'TCP'), { status: 'OK' })
  t.match(result.row(endpoints.plain, 'TLS'), { status: 'FAIL', detail: /does not speak TLS/ })
  t.match(result.row('tenant granfjelldal', 'TOKEN'), { status: 'OK', detail: `good: DPoP token issued, lifetime 300 s, scopes ${scope}` })
  t.same(result.askIt, [
    `Ask IT to open: ${endpoints.closed} (TCP) from this server`,
    `Ask IT why ${endpoints.plain} answers in plain text instead of TLS from this server: a transparent proxy or block page in between?`
  ])
  t.match(result.out, 'hosts:')
  t.match(result.out, `${endpoints.issuerHost}  HelseID (issuer), Selvbetjening API`)
  t.match(result.out, /trusted CAs: Node's bundled roots \+ 1 from .*inspection-ca\.pem/)
})

t.test('every host reachable and the token issued: exit 0, nothing to ask IT', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true })

  const result = await doctor(configPath)

  t.equal(result.code, 0, result.out)
  t.match(result.out, 'All checks passed.')
  t.same(result.askIt, [])
  t.notMatch(result.out, /\bFAIL\b/)
  t.equal(endpoints.authority.issuedTokens.length, 1, 'exactly one real token')
})

t.test('the same https server without the CA: TLS FAIL as untrusted, with the inspection advice', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'] })

  const result = await doctor(configPath)

  t.equal(result.code, 1)
  t.match(result.row(endpoints.good, 'TLS'), { status: 'FAIL', detail: /^certificate not trusted \(TLS inspection\?\): UNABLE_TO_VERIFY_LEAF_SIGNATURE; CN=localhost issued by CN=.*test CA/ })
  t.match(result.row(endpoints.good, 'HTTP'), { status: 'SKIP', detail: 'not tried: TLS failed' })
  t.same(result.askIt, [
    `Ask IT to exempt ${endpoints.good} from TLS inspection (its certificate here is issued by "CN=helseid-broker doctor test CA, O=Throwaway test CA"), or put the inspection CA's certificate (PEM) in a file and set egress.caFile to it`
  ])
  t.match(result.row('tenant granfjelldal', 'TOKEN'), { status: 'OK' }, 'HelseID itself is fine, so the token is still tried')
})

t.test('through a CONNECT proxy: DNS and TCP go to the proxy, the proxy sees exactly one CONNECT per host, failures name the proxy', async t => {
  const endpoints = await startEndpoints(t)
  const proxy = await startConnectProxy(t)
  const proxyHost = `127.0.0.1:${proxy.port}`
  const configPath = await writeConfig(t, endpoints, { apis: ['good', 'closed', 'plain'], caFile: true, proxy: proxy.url })

  const result = await doctor(configPath)

  t.equal(result.code, 1, result.out)
  for (const host of [endpoints.issuerHost, endpoints.good, endpoints.closed, endpoints.plain]) {
    t.match(result.row(host, 'DNS'), { status: 'OK', detail: `via proxy ${proxyHost}: 127.0.0.1 (an IP address, no lookup)` }, `${host}: DNS of the proxy`)
    t.match(result.row(host, 'TCP'), { status: 'OK', detail: `via proxy ${proxyHost}: connected to 127.0.0.1:${proxy.port}` }, `${host}: TCP to the proxy`)
  }
  t.match(result.row(endpoints.issuerHost, 'CONNECT'), { status: 'OK', detail: `tunnel to ${endpoints.issuerHost} through ${proxyHost} (HTTP 200)` })
  t.match(result.row(endpoints.issuerHost, 'HTTP'), { status: 'OK' })
  t.match(result.row(endpoints.good, 'TLS'), { status: 'OK', detail: /trusted, name verified/ })
  t.match(result.row(endpoints.good, 'HTTP'), { status: 'OK', detail: /HTTP 404/ })
  t.match(result.row(endpoints.closed, 'CONNECT'), { status: 'FAIL', detail: `proxy ${proxyHost} refused CONNECT ${endpoints.closed}: HTTP 502 Bad Gateway` })
  t.match(result.row(endpoints.plain, 'TLS'), { status: 'FAIL', detail: /does not speak TLS/ })
  t.match(result.row('tenant granfjelldal', 'TOKEN'), { status: 'OK' })
  t.same(result.askIt, [
    `Ask IT to open: ${endpoints.closed} (TCP) from this server, through proxy ${proxyHost} (the proxy answers HTTP 502 Bad Gateway)`,
    `Ask IT why ${endpoints.plain} answers in plain text instead of TLS from this server, through proxy ${proxyHost}: a transparent proxy or block page in between?`
  ])
  const hostChecks = proxy.tunnels.filter(target => target !== endpoints.issuerHost)
  t.same(hostChecks.sort(), [endpoints.good, endpoints.closed, endpoints.plain].sort(), 'one CONNECT per API host')
  t.same(new Set(proxy.tunnels), new Set([endpoints.issuerHost, endpoints.good, endpoints.closed, endpoints.plain]), 'and nothing else')
  t.ok(proxy.tunnels.filter(target => target === endpoints.issuerHost).length >= 2, 'HelseID: the host check, then the token request, both through the proxy')
})

t.test('a proxy from the environment never carries loopback hosts: direct, with the NO_PROXY entry named', async t => {
  const endpoints = await startEndpoints(t)
  const proxy = await startConnectProxy(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true })

  const result = await doctor(configPath, { env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'intranet.kommune.no' } })

  t.equal(result.code, 0, result.out)
  t.match(result.out, `egress: through proxy 127.0.0.1:${proxy.port} (HTTPS_PROXY), except NO_PROXY intranet.kommune.no,localhost,127.0.0.1,[::1]`)
  t.match(result.row(endpoints.good, 'DNS'), { status: 'OK', detail: /^direct \(NO_PROXY "localhost"\): localhost → / })
  t.match(result.row(endpoints.issuerHost, 'TCP'), { status: 'OK', detail: /^direct \(NO_PROXY "127\.0\.0\.1"\): connected/ })
  t.same(proxy.tunnels, [], 'the proxy saw nothing')
})

t.test('the proxy unreachable: every host fails at TCP to the proxy, one request to IT, no token tried', async t => {
  const endpoints = await startEndpoints(t)
  const proxyPort = await closedPort()
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true, proxy: `http://127.0.0.1:${proxyPort}` })

  const result = await doctor(configPath)

  t.equal(result.code, 1)
  t.match(result.row(endpoints.good, 'TCP'), { status: 'FAIL', detail: `via proxy 127.0.0.1:${proxyPort}: cannot connect to 127.0.0.1:${proxyPort}: connection refused` })
  t.match(result.row(endpoints.good, 'CONNECT'), { status: 'SKIP' })
  t.match(result.row(endpoints.issuerHost, 'CLOCK'), { status: 'SKIP' })
  t.match(result.row('tenant granfjelldal', 'TOKEN'), { status: 'SKIP', detail: /not tried: HelseID/ })
  t.same(result.askIt, [`Ask IT to open: 127.0.0.1:${proxyPort} (TCP) from this server (the egress proxy, egress.proxy)`])
  t.equal(endpoints.authority.tokenRequests.length, 0)
})

t.test('a name that does not resolve: DNS FAIL and a DNS request to IT, nothing else tried for that host', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true })
  const yaml = readFileSync(configPath, 'utf8').replace('apis:\n', 'apis:\n  missing: { url: "https://api.nosuch.example", scopes: [s] }\n')
  writeFileSync(configPath, yaml)
  const lookup = async (host: string): Promise<readonly string[]> => {
    if (host === 'api.nosuch.example') throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })
    return ['127.0.0.1']
  }

  const result = await doctor(configPath, { lookup })

  t.equal(result.code, 1)
  t.match(result.row('api.nosuch.example:443', 'DNS'), { status: 'FAIL', detail: 'api.nosuch.example does not resolve (ENOTFOUND)' })
  t.match(result.row('api.nosuch.example:443', 'TCP'), { status: 'SKIP', detail: 'not tried: DNS failed' })
  t.same(result.askIt, ['Ask IT to fix DNS: api.nosuch.example does not resolve on this server (ENOTFOUND); this server also needs api.nosuch.example:443 (TCP) open'])
})

t.test('a key HelseID does not know: TOKEN FAIL with the broker code and the OAuth error', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true, clientKey: 'unknown' })

  const result = await doctor(configPath)

  t.equal(result.code, 1)
  t.match(result.row('tenant granfjelldal', 'TOKEN'), { status: 'FAIL', detail: /^good: BROKER_IDP_REJECTED \(invalid_client\): .*Selvbetjening/ })
  t.same(result.askIt, [])
  t.match(result.out, 'Nothing to ask IT for the network')
})

t.test('through main(): 64 without --config, 78 for a missing config or caFile, 0 when all is well', async t => {
  const endpoints = await startEndpoints(t)
  const configPath = await writeConfig(t, endpoints, { apis: ['good'], caFile: true })
  const brokenCa = join(configPath, '..', 'broken.yaml')
  writeFileSync(brokenCa, readFileSync(configPath, 'utf8').replace('inspection-ca.pem', 'broken-ca.pem'))
  writeFileSync(join(configPath, '..', 'broken-ca.pem'), 'not a certificate')
  const run = async (argv: string[]): Promise<{ code: number, out: string, err: string }> => {
    const out: string[] = []
    const err: string[] = []
    const code = await main(argv, { out: line => { out.push(line) }, err: line => { err.push(line) }, untilStopped: async () => {} })
    return { code, out: out.join('\n'), err: err.join('\n') }
  }

  const noConfig = await run(['doctor'])
  const missing = await run(['doctor', '--config', '/nonexistent/helseid-broker.yaml'])
  const badCa = await run(['doctor', '--config', brokenCa])
  const good = await run(['doctor', '--config', configPath])

  t.equal(noConfig.code, 64)
  t.match(noConfig.err, 'doctor needs --config FILE')
  t.equal(missing.code, 78)
  t.equal(badCa.code, 78)
  t.match(badCa.err, /egress\.caFile: .*broken-ca\.pem holds no PEM certificate/)
  t.equal(good.code, 0, good.out + good.err)
  t.match(good.out, 'All checks passed')
})
