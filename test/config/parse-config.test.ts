// Tests for parseConfig: the PRODUCT.md example, all issues at once, and the helseid/listen/egress/logging rules.

import t from 'tap'
import { parseConfig } from '../../src/config/parse-config.ts'
import { parseConfigText } from '../../src/config/load-config.ts'
import { defaultLimits } from '../../src/config/defaults.ts'
import { ConfigError } from '../../src/errors.ts'
import { issuesOf, minimal, source, withPatch } from '../fixtures/config-fixtures.ts'

const productExample = `
helseid:
  environment: prod            # prod | test; or give issuer: https://helseid-sts.nhn.no
listen:
  proxy: 127.0.0.1:8480        # where the EPJ calls
  admin: 127.0.0.1:8481        # health, readiness, metrics, status, docs
egress:
  proxy: http://proxy.kommune.no:3128   # optional; HTTPS_PROXY / NO_PROXY are honoured too
apis:
  persontjenesten:
    url: https://api.persontjenesten.nhn.no
    scopes: [nhn:hgd-persontjenesten-api/restricted-access]
    headers: { Api-Version: "3" }        # static headers added to every upstream call
tenants:
  granfjelldal:
    client: keys/granfjelldal.json       # Selvbetjening download (extracted JSON) or a private JWK file; relative to this file
    organization: { child: "999977776" } # optional; single-tenant client naming a child unit
    apis: [persontjenesten]
  fjordvik:
    client: keys/supplier.json           # one multi-tenant supplier client may serve many tenants
    organization: { parent: "999977774", child: "999977775" }   # parent given => multi-tenant form
    apis: [persontjenesten]
`

t.test('the PRODUCT.md example parses into a full config', async t => {
  const config = parseConfigText(productExample, source)

  t.same(config, {
    source,
    helseid: { environment: 'prod', issuer: 'https://helseid-sts.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.nhn.no', timeoutMs: 10_000 },
    listen: { proxy: { host: '127.0.0.1', port: 8480 }, admin: { host: '127.0.0.1', port: 8481 }, hostnames: [] },
    limits: {
      maxBodyBytes: 1_048_576,
      maxHeaderBytes: 16_384,
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 30_000,
      maxConcurrentUpstream: 256,
      rateLimit: { requestsPerSecond: 100, burst: 200 }
    },
    browser: { allowedOrigins: [] },
    audit: {},
    egress: { proxy: 'http://proxy.kommune.no:3128' },
    apis: {
      persontjenesten: {
        name: 'persontjenesten',
        url: 'https://api.persontjenesten.nhn.no',
        scopes: ['nhn:hgd-persontjenesten-api/restricted-access'],
        headers: { 'Api-Version': '3' },
        timeoutMs: 30_000,
        connectTimeoutMs: 5_000,
        allow: []
      }
    },
    tenants: {
      granfjelldal: { name: 'granfjelldal', clientFile: '/etc/helseid-broker/keys/granfjelldal.json', organization: { child: '999977776' }, apis: ['persontjenesten'] },
      fjordvik: { name: 'fjordvik', clientFile: '/etc/helseid-broker/keys/supplier.json', organization: { parent: '999977774', child: '999977775' }, apis: ['persontjenesten'] }
    },
    keys: { warnDays: 30, expiryCheckHours: 12, autoRotate: false, rotateDays: 60 },
    logging: { level: 'info' }
  })
})

t.test('the result is deeply frozen', async t => {
  const config = parseConfig(minimal(), source)

  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.apis.persontjenesten?.scopes))
  t.ok(Object.isFrozen(config.tenants.granfjelldal?.organization))
})

t.test('a config with many problems reports every one with its path in one error', async t => {
  const text = `
helseid: { environment: staging, timeoutMs: -1 }
listen: { proxy: "localhost", admin: "[::1]:70000" }
egress: { proxy: "ftp://proxy" }
apis:
  Persontjenesten: { url: "https://ok.example", scopes: [a] }
  pt: { url: "http://api.example.no", scopes: [], headers: { Authorization: "x" }, timeout: 5 }
tenants:
  fjordvik:
    client: 42
    organisation: {}
    organization: { parent: "12345" }
    apis: [missing]
logging: { level: loud }
extra: true
`
  const error = t.throws(() => parseConfigText(text, source)) as ConfigError

  t.ok(error instanceof ConfigError)
  t.same([...error.issues].sort(), [
    'apis.Persontjenesten: API name "Persontjenesten" must be 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit (it is a URL path segment)',
    'apis.pt.headers.Authorization: the broker sets or removes Authorization itself; it cannot be a static header',
    'apis.pt.scopes: at least one scope is required',
    'apis.pt.timeout: unknown key; did you mean "timeoutMs"?',
    'apis.pt.url: http:// is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https://',
    'egress.proxy: expected an http:// or https:// URL, got "ftp://proxy"',
    'extra: unknown key (allowed: helseid, listen, callers, limits, browser, audit, egress, apis, tenants, keys, logging)',
    'helseid.environment: expected one of prod | test, got "staging"',
    'helseid.timeoutMs: expected an integer >= 1, got number -1',
    'listen.admin: expected "host:port" with a port from 0 to 65535 (IPv6 as "[::1]:8480"), got "[::1]:70000"',
    'listen.proxy: expected "host:port" with a port from 0 to 65535 (IPv6 as "[::1]:8480"), got "localhost"',
    'logging.level: expected one of fatal | error | warn | info | debug | trace | silent, got "loud"',
    'tenants.fjordvik.apis[0]: no API named "missing" in apis (known: Persontjenesten, pt)',
    'tenants.fjordvik.client: expected a non-empty string, got number 42 (put it in quotes: "42")',
    'tenants.fjordvik.organisation: unknown key; did you mean "organization"?',
    'tenants.fjordvik.organization.parent: expected 9 digits, got "12345"'
  ].sort())
  t.match(error.message, /^invalid configuration:\n {2}/)
})

t.test('root: empty, wrong type and missing sections', async t => {
  t.same(issuesOf(null), ['(root): the config is empty; expected a mapping with helseid, apis and tenants'])
  t.same(issuesOf([1]), ['(root): expected a mapping with helseid, apis and tenants, got a list'])
  t.same(issuesOf({}), ['helseid: required (e.g. environment: prod)', 'apis: required', 'tenants: required'])
  t.same(issuesOf({ ...minimal(), apis: {}, tenants: {} }), [
    'apis: at least one API is required',
    'tenants: at least one tenant is required'
  ])
  t.same(issuesOf({ ...minimal(), apis: [] }), ['apis: expected a mapping, got a list', 'tenants.granfjelldal.apis[0]: no API named "persontjenesten" in apis'])
})

t.test('an optional section left empty (all children commented out) is an empty section', async t => {
  const config = parseConfigText('helseid: { environment: test }\nlisten:\nlimits:\nbrowser:\naudit:\negress:\nlogging:\napis:\n  pt: { url: "https://x.no", scopes: [s], headers: }\ntenants:\n  a: { client: k.json, apis: [pt], organization: }\n', source)

  t.same(config.listen, { proxy: { host: '127.0.0.1', port: 8480 }, admin: { host: '127.0.0.1', port: 8481 }, hostnames: [] })
  t.same(config.limits, defaultLimits)
  t.same(config.browser, { allowedOrigins: [] })
  t.same(config.audit, {})
  t.equal(config.callers, undefined)
  t.same(config.egress, {})
  t.equal(config.logging.level, 'info')
  t.same(config.apis.pt?.headers, {})
  t.same(config.tenants.a?.organization, {})
  t.same(issuesOf({ ...minimal(), helseid: null }), ['helseid: required (e.g. environment: prod)'])
  t.same(issuesOf({ ...minimal(), apis: null }), ['apis: expected a mapping, got null', 'tenants.granfjelldal.apis[0]: no API named "persontjenesten" in apis'])
})

t.test('helseid: environment, issuer and Selvbetjening URL', async t => {
  const helseid = (value: unknown): unknown => parseConfig(withPatch(c => { c.helseid = value }), source).helseid

  t.same(helseid({ environment: 'test' }), { environment: 'test', issuer: 'https://helseid-sts.test.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.test.nhn.no', timeoutMs: 10_000 })
  t.same(helseid({ issuer: 'https://helseid-sts.nhn.no/' }), { environment: 'prod', issuer: 'https://helseid-sts.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.nhn.no', timeoutMs: 10_000 })
  t.same(helseid({ environment: 'prod', issuer: 'https://helseid-sts.nhn.no' }), { environment: 'prod', issuer: 'https://helseid-sts.nhn.no', selvbetjeningUrl: 'https://api.selvbetjening.nhn.no', timeoutMs: 10_000 })
  t.same(helseid({ issuer: 'http://127.0.0.1:4000/authority/', timeoutMs: 2500 }), { environment: 'custom', issuer: 'http://127.0.0.1:4000/authority', selvbetjeningUrl: 'http://127.0.0.1:4000', timeoutMs: 2500 })
  t.same(helseid({ issuer: 'https://sts.example.no', selvbetjeningUrl: 'https://self.example.no/' }), { environment: 'custom', issuer: 'https://sts.example.no', selvbetjeningUrl: 'https://self.example.no', timeoutMs: 10_000 })

  t.same(issuesOf(withPatch(c => { c.helseid = { environment: 'prod', issuer: 'https://helseid-sts.test.nhn.no' } })), [
    'helseid.issuer: https://helseid-sts.test.nhn.no disagrees with environment prod (whose issuer is https://helseid-sts.nhn.no); give only one of them'
  ])
  t.same(issuesOf(withPatch(c => { c.helseid = {} })), ['helseid: give environment (prod | test) or issuer (the HelseID authority URL)'])
  t.same(issuesOf(withPatch(c => { c.helseid = { issuer: 'http://sts.example.no' } })), ['helseid.issuer: http:// is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https://'])
  t.same(issuesOf(withPatch(c => { c.helseid = { environment: 'test', timeoutMs: 1.5 } })), ['helseid.timeoutMs: expected an integer >= 1, got number 1.5'])
  t.same(issuesOf(withPatch(c => { c.helseid = 'prod' })), ['helseid: expected a mapping, got "prod"'])
})

t.test('listen: defaults, IPv6, ports and clashes', async t => {
  const listen = (value: unknown): unknown => parseConfig(withPatch(c => { c.listen = value }), source).listen

  t.same(parseConfig(minimal(), source).listen, { proxy: { host: '127.0.0.1', port: 8480 }, admin: { host: '127.0.0.1', port: 8481 }, hostnames: [] })
  t.same(listen({ proxy: '[::1]:9000', admin: 'localhost:0' }), { proxy: { host: '::1', port: 9000 }, admin: { host: 'localhost', port: 0 }, hostnames: [] })
  t.same(listen({ proxy: '127.0.0.1:0', admin: '127.0.0.1:0' }), { proxy: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, hostnames: [] })
  t.same(listen({ admin: '0.0.0.0:9000' }), { proxy: { host: '127.0.0.1', port: 8480 }, admin: { host: '0.0.0.0', port: 9000 }, hostnames: [] })

  t.same(issuesOf(withPatch(c => { c.listen = { proxy: 8480 } })), ['listen.proxy: expected a "host:port" string such as "127.0.0.1:8480", got number 8480'])
  t.same(issuesOf(withPatch(c => { c.listen = { proxy: '[zz]:1' } })), ['listen.proxy: "zz" is not an IPv6 address'])
  t.same(issuesOf(withPatch(c => { c.listen = { proxy: 'bad_host:1' } })), ['listen.proxy: "bad_host" is not an IPv4 address or host name'])
  t.same(issuesOf(withPatch(c => { c.listen = { admin: '0.0.0.0:8480' } })), ['listen.admin: 0.0.0.0:8480 clashes with listen.proxy 127.0.0.1:8480; the admin listener needs its own port'])
})

t.test('egress.proxy: optional http(s) URL without credentials or path', async t => {
  t.same(parseConfig(minimal(), source).egress, {})
  t.same(parseConfig(withPatch(c => { c.egress = { proxy: 'https://proxy.example.no:8443/' } }), source).egress, { proxy: 'https://proxy.example.no:8443' })

  t.same(issuesOf(withPatch(c => { c.egress = { proxy: 'http://user:secret@proxy:3128' } })), ['egress.proxy: credentials are not allowed in a URL; secrets do not belong in the config file'])
  t.same(issuesOf(withPatch(c => { c.egress = { proxy: 'http://proxy:3128/path' } })), ['egress.proxy: a path is not allowed, got "/path"'])
  t.same(issuesOf(withPatch(c => { c.egress = { proxy: 'proxy:3128x' } })), ['egress.proxy: expected an http:// or https:// URL, got "proxy:3128x"'])
  t.same(issuesOf(withPatch(c => { c.egress = { prox: 'x' } })), ['egress.prox: unknown key; did you mean "proxy"?'])
})

t.test('logging.level: default and choices', async t => {
  t.equal(parseConfig(minimal(), source).logging.level, 'info')
  t.equal(parseConfig(withPatch(c => { c.logging = { level: 'debug' } }), source).logging.level, 'debug')
  t.same(issuesOf(withPatch(c => { c.logging = { levle: 'debug' } })), ['logging.levle: unknown key; did you mean "level"?'])
  t.same(issuesOf(withPatch(c => { c.logging = 'debug' })), ['logging: expected a mapping, got "debug"'])
})

t.test('keys: warnDays, expiryCheckHours, autoRotate and rotateDays, with defaults', async t => {
  const defaults = { warnDays: 30, expiryCheckHours: 12, autoRotate: false, rotateDays: 60 }
  t.same(parseConfig(minimal(), source).keys, defaults)
  t.same(parseConfig(withPatch(c => { c.keys = null }), source).keys, defaults)
  t.same(parseConfig(withPatch(c => { c.keys = { warnDays: 60 } }), source).keys, { ...defaults, warnDays: 60 })
  t.same(parseConfig(withPatch(c => { c.keys = { warnDays: 0, expiryCheckHours: 1 } }), source).keys, { ...defaults, warnDays: 0, expiryCheckHours: 1 })
  t.same(parseConfig(withPatch(c => { c.keys = { autoRotate: true, rotateDays: 90 } }), source).keys, { ...defaults, autoRotate: true, rotateDays: 90 })
  t.same(issuesOf(withPatch(c => { c.keys = { warnDays: -1, expiryCheckHours: 0.5 } })), [
    'keys.warnDays: expected an integer from 0 to 3650, got number -1',
    'keys.expiryCheckHours: expected an integer from 1 to 596, got number 0.5'
  ])
  t.same(issuesOf(withPatch(c => { c.keys = { expiryCheckHours: 597, warnDays: '30' } })), [
    'keys.warnDays: expected an integer from 0 to 3650, got "30"',
    'keys.expiryCheckHours: expected an integer from 1 to 596, got number 597'
  ])
  t.same(issuesOf(withPatch(c => { c.keys = { autoRotate: 'yes', rotateDays: 0 } })), [
    'keys.autoRotate: expected true or false, got "yes"',
    'keys.rotateDays: expected an integer from 1 to 3650, got number 0'
  ])
  t.same(issuesOf(withPatch(c => { c.keys = { warnDay: 30 } })), ['keys.warnDay: unknown key; did you mean "warnDays"?'])
  t.same(issuesOf(withPatch(c => { c.keys = [] })), ['keys: expected a mapping, got a list'])
})

t.test('unknown top-level keys get a suggestion when one is close', async t => {
  t.same(issuesOf(withPatch(c => { c.tenant = {} })), ['tenant: unknown key; did you mean "tenants"?'])
  t.same(issuesOf(withPatch(c => { c.Helseid = {} })), ['Helseid: unknown key; did you mean "helseid"?'])
})
