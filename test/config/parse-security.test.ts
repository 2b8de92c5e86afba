// Tests for the config's security sections: callers, allowlists, listen.hostnames, limits, browser, audit and the loopback rule.

import t from 'tap'
import { parseConfig } from '../../src/config/parse-config.ts'
import { parseConfigText } from '../../src/config/load-config.ts'
import { parseRouteRule } from '../../src/config/parse-route-rules.ts'
import { issuesOf, minimal, source, withPatch, type RawConfig } from '../fixtures/config-fixtures.ts'

/** A valid hash (of "correct horse battery staple"), made by hashSecret. */
const hash = 'scrypt$16384$8$1$1M6b1lT9Qk3xwrTRgmJmMA$Yers8jjnupk3KcM6BuKVfOFRdwMwQkxsAqGqrE6wB6c'

/** minimal() plus a second API used by no tenant, a second tenant, and caller `epj`. */
function withCaller (caller: Record<string, unknown>, patch: (config: RawConfig) => void = () => {}): RawConfig {
  return withPatch(c => {
    c.apis.kjernejournal = { url: 'https://api.kjernejournal.test.nhn.no', scopes: ['kj'] }
    c.tenants.fjordvik = { client: 'keys/fjordvik.json', apis: ['persontjenesten'] }
    c.callers = { epj: { secretHash: hash, tenants: ['granfjelldal'], ...caller } }
    patch(c)
  })
}

const callerIssues = (caller: Record<string, unknown>): readonly string[] => issuesOf(withCaller(caller))

t.test('the issue example parses', async t => {
  const config = parseConfigText(`
helseid: { environment: test }
listen:
  proxy: 0.0.0.0:8480
  admin: 127.0.0.1:8481
  hostnames: [epj-broker.kommune.local, EPJ.Kommune.Local.example, 10.0.0.5, "fe80::1"]
callers:
  epj:
    secretHash: "${hash}"
    tenants: [granfjelldal]
    apis: [persontjenesten]
    allow: ["GET /api/v3/restricted-access/person/*", "POST  /api/v3/restricted-access/person/get-by-nin"]
    rateLimit: { requestsPerSecond: 20, burst: 40 }
  dips:
    secretFile: secrets/dips.secret
    tenants: "*"
apis:
  persontjenesten:
    url: https://api.persontjenesten.test.nhn.no
    scopes: [nhn:hgd-persontjenesten-api/restricted-access]
    allow: ["GET /api/v3/restricted-access/**", "* /ping"]
tenants:
  granfjelldal: { client: keys/granfjelldal.json, apis: [persontjenesten] }
limits:
  maxBodyBytes: 65536
  maxHeaderBytes: 8192
  requestTimeoutMs: 20000
  idleTimeoutMs: 5000
  maxConcurrentUpstream: 32
  rateLimit: { requestsPerSecond: 0.5, burst: 1 }
browser:
  allowedOrigins: ["https://epj.kommune.no", "http://localhost:3000"]
audit:
  file: ../../var/log/helseid-broker/audit.jsonl
`, source)

  t.same(config.listen.hostnames, ['epj-broker.kommune.local', 'epj.kommune.local.example', '10.0.0.5', 'fe80::1'])
  t.same(config.callers, {
    epj: {
      name: 'epj',
      secret: { kind: 'hash', hash },
      tenants: ['granfjelldal'],
      apis: ['persontjenesten'],
      allow: [
        { method: 'GET', pattern: '/api/v3/restricted-access/person/*', text: 'GET /api/v3/restricted-access/person/*' },
        { method: 'POST', pattern: '/api/v3/restricted-access/person/get-by-nin', text: 'POST  /api/v3/restricted-access/person/get-by-nin' }
      ],
      rateLimit: { requestsPerSecond: 20, burst: 40 }
    },
    dips: { name: 'dips', secret: { kind: 'file', file: '/etc/helseid-broker/secrets/dips.secret' }, tenants: '*', allow: [] }
  })
  t.same(config.apis.persontjenesten?.allow, [
    { method: 'GET', pattern: '/api/v3/restricted-access/**', text: 'GET /api/v3/restricted-access/**' },
    { method: '*', pattern: '/ping', text: '* /ping' }
  ])
  t.same(config.limits, { maxBodyBytes: 65536, maxHeaderBytes: 8192, requestTimeoutMs: 20000, idleTimeoutMs: 5000, maxConcurrentUpstream: 32, rateLimit: { requestsPerSecond: 0.5, burst: 1 } })
  t.same(config.browser, { allowedOrigins: ['https://epj.kommune.no', 'http://localhost:3000'] })
  t.same(config.audit, { file: '/var/log/helseid-broker/audit.jsonl' })
  t.ok(Object.isFrozen(config.callers?.epj?.allow[0]), 'deeply frozen')
  t.ok(Object.isFrozen(config.listen.hostnames))
})

t.test('listen.proxy off loopback needs callers', async t => {
  const proxyAt = (proxy: string, callers?: unknown): readonly string[] => issuesOf(withPatch(c => {
    c.listen = { proxy }
    if (callers !== undefined) c.callers = callers
  }))

  t.same(proxyAt('0.0.0.0:8480'), ['listen.proxy: 0.0.0.0:8480 is not a loopback address; configure callers: (caller authentication) before serving other machines'])
  t.same(proxyAt('[::]:8480'), ['listen.proxy: [::]:8480 is not a loopback address; configure callers: (caller authentication) before serving other machines'])
  t.same(proxyAt('10.1.2.3:8480'), ['listen.proxy: 10.1.2.3:8480 is not a loopback address; configure callers: (caller authentication) before serving other machines'])
  t.same(proxyAt('broker.kommune.local:8480'), ['listen.proxy: broker.kommune.local:8480 is not a loopback address; configure callers: (caller authentication) before serving other machines'])
  for (const loopback of ['127.0.0.1:8480', '127.10.0.1:8480', '[::1]:8480', 'localhost:8480', 'LOCALHOST:0']) t.same(proxyAt(loopback), [], loopback)
  t.same(proxyAt('0.0.0.0:8480', { epj: { secretHash: hash, tenants: '*' } }), [], 'with callers')
  t.same(proxyAt('0.0.0.0:8480', null), ['callers: at least one caller is required; remove callers: altogether to serve loopback clients without caller authentication'], 'an empty callers section explains itself; no second issue')
})

t.test('listen.hostnames', async t => {
  const hostnames = (value: unknown): readonly string[] => issuesOf(withPatch(c => { c.listen = { hostnames: value } }))

  t.same(hostnames([]), [])
  t.same(hostnames('broker.local'), ['listen.hostnames: expected a list of host names, got "broker.local"'])
  t.same(hostnames(['[::1]', 'broker.local:8480', 'bad_name', '*.kommune.local', 'a.', 7, 'Broker.local', 'broker.LOCAL', '-x.no']), [
    'listen.hostnames[0]: write an IPv6 address without brackets, got "[::1]"',
    'listen.hostnames[1]: a host name without a port, got "broker.local:8480"',
    'listen.hostnames[2]: "bad_name" is not a DNS name or IP address',
    'listen.hostnames[3]: "*.kommune.local" is not a DNS name or IP address',
    'listen.hostnames[4]: "a." is not a DNS name or IP address',
    'listen.hostnames[5]: expected a host name or IP address, got number 7',
    'listen.hostnames[7]: "broker.LOCAL" is listed twice',
    'listen.hostnames[8]: "-x.no" is not a DNS name or IP address'
  ])
  t.same(issuesOf(withPatch(c => { c.listen = { hostname: [] } })), ['listen.hostname: unknown key; did you mean "hostnames"?'])
})

t.test('callers: names, secrets and unknown keys', async t => {
  t.same(callerIssues({}), [])
  t.same(issuesOf(withCaller({}, c => { c.callers = { EPJ: { secretHash: hash, tenants: '*' } } })), [
    'callers.EPJ: caller name "EPJ" must be 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit (it is the user name in HTTP Basic)'
  ])
  t.same(issuesOf(withCaller({}, c => { c.callers = {} })), ['callers: at least one caller is required; remove callers: altogether to serve loopback clients without caller authentication'])
  t.same(issuesOf(withCaller({}, c => { c.callers = ['epj'] })), ['callers: expected a mapping, got a list'])
  t.same(issuesOf(withCaller({}, c => { c.callers = { epj: null } })), ['callers.epj: expected a mapping, got null'])
  t.same(callerIssues({ secrethash: 'x', tenant: [] }), [
    'callers.epj.secrethash: unknown key; did you mean "secretHash"?',
    'callers.epj.tenant: unknown key; did you mean "tenants"?'
  ])

  t.same(callerIssues({ secretHash: undefined }), ['callers.epj: give secretHash (made by "helseid-broker hash-secret") or secretFile (a file holding the secret)'])
  t.same(callerIssues({ secretFile: 'epj.secret' }), ['callers.epj: give either secretHash or secretFile, not both'])
  t.same(callerIssues({ secretHash: undefined, secretFile: '' }), ['callers.epj.secretFile: expected a non-empty string, got ""'])
  t.same(parseConfig(withCaller({ secretHash: undefined, secretFile: '/run/secrets/epj' }), source).callers?.epj?.secret, { kind: 'file', file: '/run/secrets/epj' })
  t.same(parseConfig(withCaller({ secretHash: undefined, secretFile: '../secrets/epj' }), source).callers?.epj?.secret, { kind: 'file', file: '/etc/secrets/epj' })
})

t.test('callers: a secret pasted where the hash belongs is refused without being repeated', async t => {
  const pasted = 'Zm9vYmFyYmF6cXV1eC1wbGFpbi1zZWNyZXQ'
  const issues = callerIssues({ secretHash: pasted })
  const numeric = callerIssues({ secretHash: 12345678901234567890 })

  t.same(issues, ['callers.epj.secretHash: expected a hash from "helseid-broker hash-secret" (scrypt$N$r$p$salt$key)'])
  t.same(numeric, ['callers.epj.secretHash: expected the text printed by "helseid-broker hash-secret" (scrypt$...)'])
  t.same(callerIssues({ secretHash: hash.replace('$16384$', '$2097152$') }), ['callers.epj.secretHash: N 2097152 is above the limit 1048576'])
  t.same(callerIssues({ secretHash: hash.replace('$1M6b', '$!M6b') }), ['callers.epj.secretHash: the salt is not base64url'])
})

t.test('callers: tenants', async t => {
  t.same(parseConfig(withCaller({ tenants: '*' }), source).callers?.epj?.tenants, '*')
  t.same(parseConfig(withCaller({ tenants: ['*'] }), source).callers?.epj?.tenants, '*')
  t.same(parseConfig(withCaller({ tenants: ['fjordvik', 'granfjelldal'] }), source).callers?.epj?.tenants, ['fjordvik', 'granfjelldal'])

  t.same(callerIssues({ tenants: undefined }), ['callers.epj.tenants: required (a list of tenant names, or "*" for all tenants)'])
  t.same(callerIssues({ tenants: [] }), ['callers.epj.tenants: at least one tenant is required (or "*" for all tenants)'])
  t.same(callerIssues({ tenants: 'granfjelldal' }), ['callers.epj.tenants: expected a list of tenant names, or "*" for all tenants, got "granfjelldal"'])
  t.same(callerIssues({ tenants: ['*', 'granfjelldal'] }), ['callers.epj.tenants: "*" stands for all tenants; give it alone or list names'])
  t.same(callerIssues({ tenants: ['granfjelldal', 'granfjelldal', 'nosuch', 3] }), [
    'callers.epj.tenants[1]: "granfjelldal" is listed twice',
    'callers.epj.tenants[2]: no tenant named "nosuch" in tenants (known: granfjelldal, fjordvik)',
    'callers.epj.tenants[3]: expected a tenant name, got number 3'
  ])
})

t.test('callers: apis exist and are used by one of the caller\'s tenants', async t => {
  t.equal(parseConfig(withCaller({}), source).callers?.epj?.apis, undefined, 'absent: all of its tenants\' APIs')
  t.same(parseConfig(withCaller({ apis: ['persontjenesten'] }), source).callers?.epj?.apis, ['persontjenesten'])

  t.same(callerIssues({ apis: [] }), ['callers.epj.apis: at least one API is required; leave apis out for all of its tenants\' APIs'])
  t.same(callerIssues({ apis: 'persontjenesten' }), ['callers.epj.apis: expected a list of API names (leave apis out for all of its tenants\' APIs), got "persontjenesten"'])
  t.same(callerIssues({ apis: ['persontjenesten', 'persontjenesten', 'nosuch', 'kjernejournal'] }), [
    'callers.epj.apis[1]: "persontjenesten" is listed twice',
    'callers.epj.apis[2]: no API named "nosuch" in apis (known: persontjenesten, kjernejournal)',
    'callers.epj.apis[3]: none of this caller\'s tenants (granfjelldal) uses API "kjernejournal"'
  ])
  t.same(callerIssues({ tenants: '*', apis: ['kjernejournal'] }), ['callers.epj.apis[0]: none of this caller\'s tenants (granfjelldal, fjordvik) uses API "kjernejournal"'])
  t.same(issuesOf(withCaller({ tenants: '*', apis: ['kjernejournal'] }, c => { c.tenants.fjordvik = { client: 'k.json', apis: ['kjernejournal'] } })), [])
  t.same(issuesOf(withCaller({ tenants: ['fjordvik'], apis: ['kjernejournal'] }, c => { c.tenants.fjordvik = { client: 'k.json', apis: ['kjernejournal'], organization: 'x' } })), [
    'tenants.fjordvik.organization: expected a mapping with parent and/or child, got "x"'
  ], 'no second issue while the tenant itself is broken')
})

t.test('callers: rateLimit and allow', async t => {
  t.same(callerIssues({ rateLimit: { requestsPerSecond: 0, burst: 1.5 } }), [
    'callers.epj.rateLimit.requestsPerSecond: expected a number above 0 and at most 1000000, got number 0',
    'callers.epj.rateLimit.burst: expected an integer from 1 to 1000000, got number 1.5'
  ])
  t.same(callerIssues({ rateLimit: { requestsPerSecond: '20', burst: 0 } }), [
    'callers.epj.rateLimit.requestsPerSecond: expected a number above 0 and at most 1000000, got "20"',
    'callers.epj.rateLimit.burst: expected an integer from 1 to 1000000, got number 0'
  ])
  t.same(callerIssues({ rateLimit: { requestsPerSecond: Infinity, burst: 2 } }), ['callers.epj.rateLimit.requestsPerSecond: expected a number above 0 and at most 1000000, got number Infinity'])
  t.same(callerIssues({ rateLimit: { rps: 20 } }), [
    'callers.epj.rateLimit.rps: unknown key (allowed: requestsPerSecond, burst)',
    'callers.epj.rateLimit.requestsPerSecond: required (requests per second, e.g. 20 or 0.5)',
    'callers.epj.rateLimit.burst: required (how many requests may come at once, e.g. 40)'
  ])
  t.same(callerIssues({ rateLimit: 20 }), ['callers.epj.rateLimit: expected a mapping { requestsPerSecond, burst }, got number 20'])
  t.same(callerIssues({ allow: [] }), ['callers.epj.allow: at least one rule is required; leave allow out to apply no rules here'])
  t.same(callerIssues({ allow: 'GET /x' }), ['callers.epj.allow: expected a list of rules such as ["GET /api/v3/restricted-access/person/*"], got "GET /x"'])
  t.same(callerIssues({ allow: ['GET /x', 'get /y', 'GET  /x', { GET: '/x' }] }), [
    'callers.epj.allow[1]: write the method in upper case: GET',
    'callers.epj.allow[2]: "GET  /x" is listed twice',
    'callers.epj.allow[3]: expected a "METHOD /path" string such as "GET /api/v3/restricted-access/person/*", got a mapping'
  ])
})

t.test('apis.<name>.allow: every rule checked, with its index', async t => {
  const allow = (rules: unknown): readonly string[] => issuesOf(withPatch(c => { c.apis.persontjenesten.allow = rules }))

  t.same(allow(['GET /a', 'TRACE /a', 'GET a', 'GET /a?x=1', 'GET /a//b', 'GET /a/../b', 'GET /a/**/b', 'GET /a/b*', 'GET /a%2Fb', 'GET /a b', 'GET /a/<x>', ' GET /a', 'GET\t/a', 'GET /a/', 'GET /a#f', 'GET /./a']), [
    'apis.persontjenesten.allow[1]: unknown method "TRACE"; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or * for any',
    'apis.persontjenesten.allow[2]: the path must start with "/", got "a"',
    'apis.persontjenesten.allow[3]: a query is not allowed; rules match the path only',
    'apis.persontjenesten.allow[4]: the path has an empty segment ("//" or a trailing "/")',
    'apis.persontjenesten.allow[5]: dot segments ("." and "..") are not allowed',
    'apis.persontjenesten.allow[6]: "**" is only allowed as the last segment',
    'apis.persontjenesten.allow[7]: "*" must be a whole segment, got "b*"',
    'apis.persontjenesten.allow[8]: percent-escapes are not supported, got "a%2Fb"; use * for a segment that needs them',
    'apis.persontjenesten.allow[9]: expected "METHOD /path" such as "GET /api/v3/restricted-access/person/*", got "GET /a b"',
    'apis.persontjenesten.allow[10]: the segment "<x>" holds characters that cannot appear in a URL path',
    'apis.persontjenesten.allow[11]: expected "METHOD /path" such as "GET /api/v3/restricted-access/person/*", got " GET /a"',
    'apis.persontjenesten.allow[12]: expected "METHOD /path" such as "GET /api/v3/restricted-access/person/*", got "GET\\t/a"',
    'apis.persontjenesten.allow[13]: the path has an empty segment ("//" or a trailing "/")',
    'apis.persontjenesten.allow[14]: a fragment is not allowed',
    'apis.persontjenesten.allow[15]: dot segments ("." and "..") are not allowed'
  ])
  t.same(allow({ rules: [] }), ['apis.persontjenesten.allow: expected a list of rules such as ["GET /api/v3/restricted-access/person/*"], got a mapping'])
  t.same(allow(['Get /a']), ['apis.persontjenesten.allow[0]: write the method in upper case: GET'])
})

t.test('parseRouteRule: the accepted forms', async t => {
  t.same(parseRouteRule('GET /'), { method: 'GET', pattern: '/', text: 'GET /' })
  t.same(parseRouteRule('* /**'), { method: '*', pattern: '/**', text: '* /**' })
  t.same(parseRouteRule('OPTIONS /*/x/**'), { method: 'OPTIONS', pattern: '/*/x/**', text: 'OPTIONS /*/x/**' })
  t.same(parseRouteRule("DELETE /a-b_c.d~e/!$&'()+,;=:@"), { method: 'DELETE', pattern: "/a-b_c.d~e/!$&'()+,;=:@", text: "DELETE /a-b_c.d~e/!$&'()+,;=:@" })
  for (const method of ['HEAD', 'POST', 'PUT', 'PATCH']) t.match(parseRouteRule(`${method} /a`), { method })
  t.equal(parseRouteRule('GET'), 'expected "METHOD /path" such as "GET /api/v3/restricted-access/person/*", got "GET"')
  t.equal(parseRouteRule('/a'), 'expected "METHOD /path" such as "GET /api/v3/restricted-access/person/*", got "/a"')
  t.equal(parseRouteRule('GET /**/**'), '"**" is only allowed as the last segment')
})

t.test('limits: defaults, ranges and unknown keys', async t => {
  const limits = (value: unknown): readonly string[] => issuesOf(withPatch(c => { c.limits = value }))

  t.same(parseConfig(withPatch(c => { c.limits = { maxBodyBytes: 10 } }), source).limits, {
    maxBodyBytes: 10, maxHeaderBytes: 16384, requestTimeoutMs: 60000, idleTimeoutMs: 30000, maxConcurrentUpstream: 256, rateLimit: { requestsPerSecond: 100, burst: 200 }
  })
  t.same(limits({ maxBodyBytes: 0, maxHeaderBytes: 1023, requestTimeoutMs: '60000', idleTimeoutMs: 2 ** 31, maxConcurrentUpstream: 1.5 }), [
    'limits.maxBodyBytes: expected an integer from 1 to 1073741824, got number 0',
    'limits.maxHeaderBytes: expected an integer from 1024 to 1048576, got number 1023',
    'limits.requestTimeoutMs: expected an integer from 1 to 2147483647, got "60000"',
    'limits.idleTimeoutMs: expected an integer from 1 to 2147483647, got number 2147483648',
    'limits.maxConcurrentUpstream: expected an integer from 1 to 100000, got number 1.5'
  ])
  t.same(limits({ maxHeaderBytes: 1048577 }), ['limits.maxHeaderBytes: expected an integer from 1024 to 1048576, got number 1048577'])
  t.same(limits({ rateLimit: { requestsPerSecond: 5 } }), ['limits.rateLimit.burst: required (how many requests may come at once, e.g. 40)'])
  t.same(limits({ maxBodyByte: 1 }), ['limits.maxBodyByte: unknown key; did you mean "maxBodyBytes"?'])
  t.same(limits({ maxBody: 1 }), ['limits.maxBody: unknown key (allowed: maxBodyBytes, maxHeaderBytes, requestTimeoutMs, idleTimeoutMs, maxConcurrentUpstream, rateLimit)'])
  t.same(limits([]), ['limits: expected a mapping, got a list'])
})

t.test('browser.allowedOrigins: exactly as browsers send Origin', async t => {
  const origins = (value: unknown): readonly string[] => issuesOf(withPatch(c => { c.browser = { allowedOrigins: value } }))

  t.same(origins(['https://epj.kommune.no', 'http://10.0.0.5:8080', 'https://[::1]:8443']), [])
  t.same(origins(['https://epj.kommune.no', 'http://localhost:3000', 'https://epj.kommune.no/', 'https://epj.kommune.no/app', 'https://EPJ.kommune.no', 'https://epj.kommune.no:443', 'epj.kommune.no', 'ftp://x.no', '*', 'null', 'https://u:p@x.no', 4, 'https://epj.kommune.no']), [
    'browser.allowedOrigins[2]: an origin is scheme://host[:port] without a path, query or trailing "/"; write https://epj.kommune.no',
    'browser.allowedOrigins[3]: an origin is scheme://host[:port] without a path, query or trailing "/"; write https://epj.kommune.no',
    'browser.allowedOrigins[4]: write it as browsers send it: https://epj.kommune.no',
    'browser.allowedOrigins[5]: write it as browsers send it: https://epj.kommune.no',
    'browser.allowedOrigins[6]: expected an origin such as "https://epj.kommune.no" (scheme://host[:port]), got "epj.kommune.no"',
    'browser.allowedOrigins[7]: expected an http:// or https:// origin, got "ftp://x.no"',
    'browser.allowedOrigins[8]: "*" is not allowed; list each origin (scheme://host[:port])',
    'browser.allowedOrigins[9]: "null" is not allowed; list each origin (scheme://host[:port])',
    'browser.allowedOrigins[10]: an origin has no user name or password',
    'browser.allowedOrigins[11]: expected an origin such as "https://epj.kommune.no", got number 4',
    'browser.allowedOrigins[12]: "https://epj.kommune.no" is listed twice'
  ])
  t.same(origins('https://epj.kommune.no'), ['browser.allowedOrigins: expected a list of origins such as ["https://epj.kommune.no"], got "https://epj.kommune.no"'])
  t.same(issuesOf(withPatch(c => { c.browser = { allowOrigins: [] } })), ['browser.allowOrigins: unknown key; did you mean "allowedOrigins"?'])
})

t.test('audit.file: absolute, relative to the config file, or "-" for stdout', async t => {
  const audit = (value: unknown): unknown => parseConfig(withPatch(c => { c.audit = value }), source).audit

  t.same(audit(undefined), {})
  t.same(audit({}), {})
  t.same(audit({ file: '-' }), { file: '-' })
  t.same(audit({ file: 'audit.jsonl' }), { file: '/etc/helseid-broker/audit.jsonl' })
  t.same(audit({ file: '/var/log/helseid-broker/audit.jsonl' }), { file: '/var/log/helseid-broker/audit.jsonl' })
  t.same(issuesOf(withPatch(c => { c.audit = { file: '' } })), ['audit.file: expected a non-empty string, got ""'])
  t.same(issuesOf(withPatch(c => { c.audit = { path: 'x' } })), ['audit.path: unknown key (allowed: file)'])
  t.same(issuesOf(withPatch(c => { c.audit = '-' })), ['audit: expected a mapping, got "-"'])
})

t.test('without the new sections nothing changes: no callers, default limits', async t => {
  const config = parseConfig(minimal(), source)

  t.equal(config.callers, undefined)
  t.notOk('callers' in config)
  t.same(config.apis.persontjenesten?.allow, [])
})
