// The pieces of doctor without a network: NO_PROXY matching, proxy routes, clock skew, targets, the report text, egress.caFile parsing and loading.

import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { judgeClockSkew } from '../../src/doctor/clock-skew.ts'
import { formatDoctorReport, isHealthy } from '../../src/doctor/doctor-report.ts'
import { noProxyEntryFor, proxyEndpoint, routeFor } from '../../src/doctor/doctor-route.ts'
import { doctorTargets } from '../../src/doctor/doctor-targets.ts'
import { parseConfig } from '../../src/config/parse-config.ts'
import { ConfigError } from '../../src/errors.ts'
import { loadCaCertificates } from '../../src/http/ca-file.ts'
import { resolveEgressRoute } from '../../src/http/egress.ts'
import { issuesOf, minimal, source, withPatch } from '../fixtures/config-fixtures.ts'
import { runCheck } from '../../src/commands/check.ts'
import { privateJwk } from '../fixtures/client-key-files.ts'
import { testPki } from './loopback-endpoints.ts'

t.test('NO_PROXY entries match as undici matches them: host, subdomains, leading dot or *., optional port', async t => {
  const noProxy = 'intranet.kommune.no, .nhn.no *.test.example,localhost:8443,[::1]'

  t.equal(noProxyEntryFor('intranet.kommune.no', 443, noProxy), 'intranet.kommune.no')
  t.equal(noProxyEntryFor('api.persontjenesten.nhn.no', 443, noProxy), '.nhn.no')
  t.equal(noProxyEntryFor('nhn.no', 443, noProxy), '.nhn.no')
  t.equal(noProxyEntryFor('a.test.example', 443, noProxy), '*.test.example')
  t.equal(noProxyEntryFor('localhost', 8443, noProxy), 'localhost:8443')
  t.equal(noProxyEntryFor('localhost', 443, noProxy), undefined, 'another port goes through the proxy')
  t.equal(noProxyEntryFor('[::1]', 443, noProxy), '[::1]')
  t.equal(noProxyEntryFor('helseid-sts.nhn.no.evil.example', 443, noProxy), undefined)
  t.equal(noProxyEntryFor('xnhn.no', 443, noProxy), undefined)
})

t.test('the egress route: egress.proxy first, then HTTPS_PROXY…; loopback never through a proxy from the environment; NO_PROXY=* means direct', async t => {
  t.same(resolveEgressRoute(undefined, {}), undefined)
  t.same(resolveEgressRoute('http://proxy.kommune.no:3128', { HTTPS_PROXY: 'http://other:1', NO_PROXY: '.nhn.no' }), { proxyUrl: 'http://proxy.kommune.no:3128', source: 'egress.proxy', noProxy: '.nhn.no' })
  t.same(resolveEgressRoute(undefined, { https_proxy: 'http://p:8080' }), { proxyUrl: 'http://p:8080', source: 'https_proxy', noProxy: 'localhost,127.0.0.1,[::1]' })
  t.same(resolveEgressRoute(undefined, { HTTPS_PROXY: '', https_proxy: 'http://p:8080' }), undefined, 'an empty HTTPS_PROXY turns the proxy off, as before')
  t.same(resolveEgressRoute('http://p:3128', { NO_PROXY: '*' }), undefined)
  t.same(resolveEgressRoute(undefined, { HTTP_PROXY: 'http://p:3128', no_proxy: ' * ' }), undefined)
})

t.test('routes and the proxy endpoint: credentials become Proxy-Authorization and never appear in the label', async t => {
  const config = parseConfig(withPatch(c => { c.apis.persontjenesten.url = 'https://api.persontjenesten.test.nhn.no:8443' }), source)
  const [issuer, selvbetjening, api] = doctorTargets(config)
  const egress = resolveEgressRoute(undefined, { HTTPS_PROXY: 'http://user:p%40ss@proxy.kommune.no:3128', NO_PROXY: 'api.selvbetjening.test.nhn.no' })

  t.ok(egress !== undefined)
  if (egress === undefined || issuer === undefined || selvbetjening === undefined || api === undefined) return
  const endpoint = proxyEndpoint(egress)
  t.same(endpoint, { host: 'proxy.kommune.no', port: 3128, isTls: false, label: 'proxy.kommune.no:3128', source: 'HTTPS_PROXY', authorization: `Basic ${Buffer.from('user:p@ss').toString('base64')}` })
  t.same(routeFor(issuer, egress), { kind: 'proxy', proxy: endpoint })
  t.same(routeFor(selvbetjening, egress), { kind: 'direct', noProxyEntry: 'api.selvbetjening.test.nhn.no' })
  t.same(routeFor(api, undefined), { kind: 'direct' })
  t.equal(api.label, 'api.persontjenesten.test.nhn.no:8443')
})

t.test('targets: issuer, Selvbetjening and each API once, the issuer GETs its discovery document, shared hosts merge their roles', async t => {
  const config = parseConfig(withPatch(c => {
    c.helseid = { environment: 'prod' }
    c.apis.other = { url: 'https://api.persontjenesten.nhn.no/v2', scopes: ['x'] }
    c.apis.persontjenesten.url = 'https://api.persontjenesten.nhn.no'
  }), source)

  const targets = doctorTargets(config)

  t.same(targets.map(target => [target.label, target.roles, target.httpPath, target.isTls]), [
    ['helseid-sts.nhn.no:443', ['HelseID (issuer)'], '/.well-known/openid-configuration', true],
    ['api.selvbetjening.nhn.no:443', ['Selvbetjening API'], '/', true],
    ['api.persontjenesten.nhn.no:443', ['API persontjenesten', 'API other'], '/', true]
  ])
})

t.test('clock skew: OK within 2 s, WARN above, FAIL above 30 s with a request to fix NTP; no Date header is a warning', async t => {
  const serverMs = Date.parse('Mon, 23 Nov 2026 10:00:00 GMT')
  const date = new Date(serverMs).toUTCString()

  const ok = judgeClockSkew(date, serverMs + 400, serverMs + 600)
  const ahead = judgeClockSkew(date, serverMs + 10_500, serverMs + 10_500)
  const behind = judgeClockSkew(date, serverMs - 59_500, serverMs - 59_500)
  const none = judgeClockSkew(undefined, serverMs, serverMs)

  t.match(ok, { status: 'OK', detail: /0\.0 s/ })
  t.match(ahead, { status: 'WARN', detail: /10\.0 s ahead of HelseID/ })
  t.match(behind, { status: 'FAIL', detail: /60\.0 s behind HelseID.*HelseID will refuse/, ask: 'Ask IT to fix time synchronisation (NTP) on this server: its clock is 60 s off' })
  t.match(none, { status: 'WARN', detail: /no usable Date header/ })
})

t.test('the report: an aligned table, the verdict, and the requests to IT', async t => {
  const report = {
    preamble: ['helseid-broker doctor: /etc/helseid-broker/helseid-broker.yaml'],
    rows: [
      { subject: 'helseid-sts.nhn.no:443', step: 'TCP' as const, status: 'FAIL' as const, detail: 'cannot connect' },
      { subject: 'tenant granfjelldal', step: 'TOKEN' as const, status: 'SKIP' as const, detail: 'not tried' }
    ],
    askIt: ['Ask IT to open: helseid-sts.nhn.no:443 (TCP) from this server']
  }

  const lines = formatDoctorReport(report)

  t.notOk(isHealthy(report))
  t.same(lines, [
    'helseid-broker doctor: /etc/helseid-broker/helseid-broker.yaml',
    '',
    'HOST / TENANT           STEP   RESULT  DETAIL',
    'helseid-sts.nhn.no:443  TCP    FAIL    cannot connect',
    'tenant granfjelldal     TOKEN  SKIP    not tried',
    '',
    '1 check failed.',
    '',
    'What to ask IT:',
    '  Ask IT to open: helseid-sts.nhn.no:443 (TCP) from this server'
  ])
})

t.test('egress.caFile: optional, resolved against the config file\'s folder; loading reads every certificate or names the problem', async t => {
  const dir = t.testdir({})
  const pki = testPki()
  writeFileSync(join(dir, 'bundle.pem'), `${pki.caPem}\n${pki.certPem}`)
  writeFileSync(join(dir, 'empty.pem'), 'nothing here')
  writeFileSync(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
  const loadIssues = async (file: string): Promise<readonly string[]> => await loadCaCertificates(file).then(() => [], (error: unknown) => error instanceof ConfigError ? error.issues : ['not a ConfigError'])

  t.same(parseConfig(minimal(), source).egress, {})
  t.same(parseConfig(withPatch(c => { c.egress = { caFile: 'ca/inspection.pem' } }), source).egress, { caFile: '/etc/helseid-broker/ca/inspection.pem' })
  t.same(issuesOf(withPatch(c => { c.egress = { caFile: ['a.pem'] } })), ['egress.caFile: expected a non-empty string, got a list'])
  t.same(issuesOf(withPatch(c => { c.egress = { cafile: 'x.pem' } })), ['egress.cafile: unknown key; did you mean "caFile"?'])
  t.equal((await loadCaCertificates(join(dir, 'bundle.pem'))).length, 2)
  t.same(await loadIssues(join(dir, 'missing.pem')), [`egress.caFile: cannot read ${join(dir, 'missing.pem')}: ENOENT`])
  t.same(await loadIssues(join(dir, 'empty.pem')), [`egress.caFile: ${join(dir, 'empty.pem')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`])
  t.same(await loadIssues(join(dir, 'broken.pem')), [`egress.caFile: certificate 1 in ${join(dir, 'broken.pem')} is not a valid X.509 certificate`])
})

t.test('check validates egress.caFile like a key file: exit 78 naming it', async t => {
  const dir = t.testdir({
    'broker.yaml': 'helseid: { environment: test }\negress: { caFile: missing-ca.pem }\napis:\n  pt: { url: "https://api.persontjenesten.test.nhn.no", scopes: [s] }\ntenants:\n  a: { client: k.json, clientId: c, apis: [pt] }\n'
  })
  const pki = testPki()
  writeFileSync(join(dir, 'k.json'), JSON.stringify({ ...await privateJwk('P-256'), kid: 'k1' }), { mode: 0o600 })
  const lines: string[] = []

  const missing = await runCheck(join(dir, 'broker.yaml'), line => { lines.push(line) })
  writeFileSync(join(dir, 'missing-ca.pem'), pki.caPem)
  const present = await runCheck(join(dir, 'broker.yaml'), line => { lines.push(line) })

  t.equal(missing, 78)
  t.match(lines.join('\n'), `egress.caFile: cannot read ${join(dir, 'missing-ca.pem')}: ENOENT`)
  t.equal(present, 0)
  t.match(lines.join('\n'), `; extra CA certificates from ${join(dir, 'missing-ca.pem')}`)
})
