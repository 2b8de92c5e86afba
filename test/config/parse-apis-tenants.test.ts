// Tests for parseConfig's apis and tenants sections: URLs, scopes, headers, names, client files and organisations.

import t from 'tap'
import { parseConfig } from '../../src/config/parse-config.ts'
import { issuesOf, minimal, source, withPatch } from '../fixtures/config-fixtures.ts'

t.test('apis: url rules', async t => {
  const url = (value: string): unknown => parseConfig(withPatch(c => { c.apis.persontjenesten.url = value }), source).apis.persontjenesten?.url

  t.equal(url('https://api.example.no/base/'), 'https://api.example.no/base')
  t.equal(url('HTTPS://API.Example.NO'), 'https://api.example.no')
  t.equal(url('http://127.1.2.3:9000'), 'http://127.1.2.3:9000')
  t.equal(url('http://localhost:9000/x'), 'http://localhost:9000/x')
  t.equal(url('http://[::1]:9000'), 'http://[::1]:9000')

  const issue = (value: unknown): readonly string[] => issuesOf(withPatch(c => { c.apis.persontjenesten.url = value }))
  t.same(issue('http://10.0.0.1'), ['apis.persontjenesten.url: http:// is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https://'])
  t.same(issue('https://api.example.no/?x=1'), ['apis.persontjenesten.url: a query string is not allowed'])
  t.same(issue('https://api.example.no/?'), ['apis.persontjenesten.url: a query string is not allowed'])
  t.same(issue('https://api.example.no/#top'), ['apis.persontjenesten.url: a fragment is not allowed'])
  t.same(issue('https://me:pw@api.example.no'), ['apis.persontjenesten.url: credentials are not allowed in a URL; secrets do not belong in the config file'])
  t.same(issue('https://'), ['apis.persontjenesten.url: expected an absolute URL such as https://host.example, got "https://"'])
  t.same(issue('/relative'), ['apis.persontjenesten.url: expected an absolute URL such as https://host.example, got "/relative"'])
  t.same(issue(undefined), ['apis.persontjenesten.url: required'])
  t.same(issue(['https://x']), ['apis.persontjenesten.url: expected a non-empty string, got a list'])
})

t.test('apis: names, scopes, headers and timeouts', async t => {
  const api = parseConfig(withPatch(c => {
    c.apis.persontjenesten.headers = { 'Api-Version': '3', 'X-Vendor': 'dips' }
    c.apis.persontjenesten.timeoutMs = 60_000
    c.apis.persontjenesten.connectTimeoutMs = 2000
  }), source).apis.persontjenesten
  t.same(api?.headers, { 'Api-Version': '3', 'X-Vendor': 'dips' })
  t.equal(api?.timeoutMs, 60_000)
  t.equal(api?.connectTimeoutMs, 2000)

  const patchApi = (patch: Record<string, unknown>): readonly string[] => issuesOf(withPatch(c => { Object.assign(c.apis.persontjenesten, patch) }))
  t.same(patchApi({ scopes: 'a b' }), ['apis.persontjenesten.scopes: expected a list of scopes, got "a b"'])
  t.same(patchApi({ scopes: ['a', 'a', 3, 'b c'] }), [
    'apis.persontjenesten.scopes[1]: duplicate scope "a"',
    'apis.persontjenesten.scopes[2]: expected a non-empty string, got number 3 (put it in quotes: "3")',
    'apis.persontjenesten.scopes[3]: a scope cannot contain whitespace, got "b c"; list each scope separately'
  ])
  t.same(patchApi({ scopes: undefined }), ['apis.persontjenesten.scopes: required (a list of scopes, e.g. [nhn:hgd-persontjenesten-api/restricted-access])'])
  t.same(patchApi({ headers: { dpop: 'x', HOST: 'y', 'Bad Name': 'z', 'X-A': 'a\r\nInjected: 1', 'x-b': 'b', 'X-B': 'c' } }), [
    'apis.persontjenesten.headers.dpop: the broker sets or removes dpop itself; it cannot be a static header',
    'apis.persontjenesten.headers.HOST: the broker sets or removes HOST itself; it cannot be a static header',
    'apis.persontjenesten.headers["Bad Name"]: not a valid header name',
    'apis.persontjenesten.headers.X-A: the value contains a line break or control character',
    'apis.persontjenesten.headers.X-B: duplicate header (names are case-insensitive)'
  ])
  t.same(patchApi({ headers: ['Api-Version: 3'] }), ['apis.persontjenesten.headers: expected a mapping of header name to value, got a list'])
  t.same(patchApi({ timeoutMs: 0, connectTimeoutMs: '5000' }), [
    'apis.persontjenesten.timeoutMs: expected an integer >= 1, got number 0',
    'apis.persontjenesten.connectTimeoutMs: expected an integer >= 1, got "5000"'
  ])
  t.same(issuesOf(withPatch(c => { c.apis['-x'] = c.apis.persontjenesten })), ['apis.-x: API name "-x" must be 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit (it is a URL path segment)'])
  t.same(issuesOf(withPatch(c => { c.apis['a'.repeat(64)] = c.apis.persontjenesten })).length, 1)
  t.same(issuesOf({ ...minimal(), apis: { persontjenesten: 'https://x' } }), ['apis.persontjenesten: expected a mapping, got "https://x"'])
})

t.test('tenants: client path, client id, organisation and apis', async t => {
  const tenant = (patch: Record<string, unknown>): unknown => parseConfig(withPatch(c => { Object.assign(c.tenants.granfjelldal, patch) }), source).tenants.granfjelldal

  t.same(tenant({}), { name: 'granfjelldal', clientFile: '/etc/helseid-broker/keys/granfjelldal.json', organization: {}, apis: ['persontjenesten'] })
  t.match(tenant({ client: '/var/lib/helseid-broker/k.json', clientId: 'abc', organization: { parent: '999977774' } }), {
    clientFile: '/var/lib/helseid-broker/k.json', clientId: 'abc', organization: { parent: '999977774' }
  })
  t.match(tenant({ client: '../shared/k.json', organization: {} }), { clientFile: '/etc/shared/k.json', organization: {} })

  const patchTenant = (patch: Record<string, unknown>): readonly string[] => issuesOf(withPatch(c => { Object.assign(c.tenants.granfjelldal, patch) }))
  t.same(patchTenant({ client: undefined }), ['tenants.granfjelldal.client: required'])
  t.same(patchTenant({ clientId: '' }), ['tenants.granfjelldal.clientId: expected a non-empty string, got ""'])
  t.same(patchTenant({ organization: { child: '99997777', parent: '9999777745', unit: '1' } }), [
    'tenants.granfjelldal.organization.unit: unknown key (allowed: parent, child)',
    'tenants.granfjelldal.organization.parent: expected 9 digits, got "9999777745"',
    'tenants.granfjelldal.organization.child: expected 9 digits, got "99997777"'
  ])
  t.same(patchTenant({ organization: '999977776' }), ['tenants.granfjelldal.organization: expected a mapping with parent and/or child, got "999977776"'])
  t.same(patchTenant({ apis: [] }), ['tenants.granfjelldal.apis: at least one API is required'])
  t.same(patchTenant({ apis: 'persontjenesten' }), ['tenants.granfjelldal.apis: expected a list of API names, got "persontjenesten"'])
  t.same(patchTenant({ apis: ['persontjenesten', 'persontjenesten', 'kjernejournal'] }), [
    'tenants.granfjelldal.apis[1]: "persontjenesten" is listed twice',
    'tenants.granfjelldal.apis[2]: no API named "kjernejournal" in apis (known: persontjenesten)'
  ])
  t.same(patchTenant({ apis: undefined }), ['tenants.granfjelldal.apis: required (a list of API names from apis)'])
  t.same(issuesOf(withPatch(c => { c.tenants['Fjord Vik'] = c.tenants.granfjelldal })), ['tenants["Fjord Vik"]: tenant name "Fjord Vik" must be 1-63 lowercase letters, digits, "_" or "-", starting with a letter or digit (it is a URL path segment)'])
})

t.test('a tenant naming an API whose settings are wrong gets no second issue', async t => {
  t.same(issuesOf(withPatch(c => { c.apis.persontjenesten.url = 'ftp://x' })), ['apis.persontjenesten.url: expected an http:// or https:// URL, got "ftp://x"'])
})
