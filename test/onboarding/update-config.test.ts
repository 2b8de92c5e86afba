// Tests for updateTenantConfig: in-place edits that keep every other byte, the Document API fallback, JSON configs.

import t from 'tap'
import { parse } from 'yaml'
import { ConfigError } from '../../src/errors.ts'
import { TenantApisNeededError, updateTenantConfig, type TenantChange } from '../../src/onboarding/update-config.ts'

const head = `# Broker for Granfjelldal (comment kept)
helseid:   { environment: test }    # odd spacing kept too
apis:
  persontjenesten:
    url: https://api.persontjenesten.test.nhn.no
    scopes: [ nhn:hgd-persontjenesten-api/restricted-access ]
`

const add: TenantChange = { tenant: 'fjordvik', client: 'keys/fjordvik.json', clientId: 'c-1' }

t.test('a new tenant goes after the last one; nothing else changes', async t => {
  const text = `${head}tenants:
    granfjelldal:          # four-space indentation
        client: keys/g.json
        apis:
          - persontjenesten
    # a commented-out tenant stays below
    #   other: {}
logging: { level: info }
`
  const update = updateTenantConfig(text, { ...add, organization: { child: '999977775' } })

  t.equal(update.method, 'edited')
  t.equal(update.isNewTenant, true)
  t.equal(update.text, text.replace('    # a commented-out', `    fjordvik:
        client: keys/fjordvik.json
        organization: { child: "999977775" }
        apis: [persontjenesten]
    # a commented-out`))
  t.same(update.changes, ['added tenants.fjordvik: client keys/fjordvik.json, organization child 999977775, apis persontjenesten'])
})

t.test('no tenants section: one is appended', async t => {
  const update = updateTenantConfig(head.trimEnd(), add)
  t.equal(update.method, 'edited')
  t.equal(update.text, `${head}tenants:\n  fjordvik:\n    client: keys/fjordvik.json\n    apis: [persontjenesten]\n`)
})

t.test('an empty tenants section (null with a comment, or {}) gets its first tenant below the key', async t => {
  const nullTenants = updateTenantConfig(`${head}tenants:   # import fills this in\n  # example:\nlogging: { level: info }\n`, add)
  t.equal(nullTenants.method, 'edited')
  t.equal(nullTenants.text, `${head}tenants:   # import fills this in\n  fjordvik:\n    client: keys/fjordvik.json\n    apis: [persontjenesten]\n  # example:\nlogging: { level: info }\n`)

  const emptyMap = updateTenantConfig(`${head}tenants: {}  # none yet\n`, add)
  t.equal(emptyMap.method, 'edited')
  t.equal(emptyMap.text, `${head}tenants:   # none yet\n  fjordvik:\n    client: keys/fjordvik.json\n    apis: [persontjenesten]\n`)
})

t.test('an existing tenant: only the changed values are replaced, in their own style', async t => {
  const text = `${head}tenants:
  granfjelldal:
    client: keys/supplier.json   # shared supplier key
    clientId: old-client
    organization:
      parent: "999977774"
      child: "999977776"
    apis: [ persontjenesten ]    # padded flow list
`
  const update = updateTenantConfig(text, { tenant: 'granfjelldal', client: 'keys/granfjelldal.json', clientId: 'new-client', organization: { child: '999977775' }, apis: ['persontjenesten'] })

  t.equal(update.method, 'edited')
  t.equal(update.isNewTenant, false)
  t.equal(update.text, `${head}tenants:
  granfjelldal:
    client: keys/granfjelldal.json   # shared supplier key
    clientId: new-client
    organization:
      child: "999977775"
    apis: [ persontjenesten ]    # padded flow list
`)
  t.same(update.changes, [
    'tenants.granfjelldal.client: keys/supplier.json → keys/granfjelldal.json',
    'tenants.granfjelldal.clientId: old-client → new-client',
    'tenants.granfjelldal.organization: parent 999977774 child 999977776 → child 999977775'
  ])
})

t.test('an existing tenant without organization gets one added as a new line', async t => {
  const text = `${head}tenants:\n  granfjelldal:\n    client: keys/granfjelldal.json\n    apis: [persontjenesten]   # end\n`
  const update = updateTenantConfig(text, { tenant: 'granfjelldal', client: 'keys/granfjelldal.json', clientId: 'c', organization: { parent: '999977774', child: '999977775' } })
  t.equal(update.method, 'edited')
  t.equal(update.text, `${text}    organization: { parent: "999977774", child: "999977775" }\n`)
})

t.test('nothing to change: the text comes back as it is', async t => {
  const text = `\uFEFF${head}tenants:\n  fjordvik: { client: keys/fjordvik.json, apis: [persontjenesten] }\n`
  const update = updateTenantConfig(text, add)
  t.equal(update.method, 'unchanged')
  t.equal(update.text, text)
  t.same(update.changes, [])
})

t.test('flow-style tenants: the yaml library rewrites the file, keeping comments', async t => {
  const text = `${head}# the tenants\ntenants: { granfjelldal: { client: keys/g.json, apis: [persontjenesten] } }   # flow\n`
  const update = updateTenantConfig(text, add)
  t.equal(update.method, 'rewritten')
  t.match(update.text, '# Broker for Granfjelldal (comment kept)')
  t.match(update.text, '# the tenants')
  t.same(parse(update.text).tenants, {
    granfjelldal: { client: 'keys/g.json', apis: ['persontjenesten'] },
    fjordvik: { client: 'keys/fjordvik.json', apis: ['persontjenesten'] }
  })
})

t.test('a BOM is kept', async t => {
  const update = updateTenantConfig(`\uFEFF${head}tenants:\n  a:\n    client: k.json\n    apis: [persontjenesten]\n`, add)
  t.ok(update.text.startsWith('\uFEFF# Broker'))
  t.equal(update.method, 'edited')
})

t.test('a JSON config stays JSON, with its indentation', async t => {
  const text = `{\n    "helseid": { "environment": "test" },\n    "apis": { "persontjenesten": { "url": "https://x.test.nhn.no", "scopes": ["s"] } },\n    "tenants": {}\n}\n`
  const update = updateTenantConfig(text, { ...add, apis: ['persontjenesten'] })
  t.equal(update.method, 'json')
  t.same(JSON.parse(update.text).tenants, { fjordvik: { client: 'keys/fjordvik.json', apis: ['persontjenesten'] } })
  t.match(update.text, /^\{\n {4}"helseid"/)
  t.ok(update.text.endsWith('}\n'))
})

t.test('a JSON config: an existing tenant gets the new client, client id and organization; its apis and everything else stay', async t => {
  const text = '{\n\t"helseid": { "environment": "test" },\n\t"apis": { "persontjenesten": { "url": "https://x.test.nhn.no", "scopes": ["s"] } },\n' +
    '\t"tenants": {\n\t\t"granfjelldal": { "client": "keys/old.json", "clientId": "old-client", "organization": { "child": "999977776" }, "apis": ["persontjenesten"] }\n\t},\n' +
    '\t"logging": { "level": "warn" }\n}'
  const update = updateTenantConfig(text, { tenant: 'granfjelldal', client: 'keys/granfjelldal.json', clientId: 'new-client', organization: { parent: '999977774', child: '999977775' } })

  t.equal(update.method, 'json')
  t.equal(update.isNewTenant, false)
  const config = JSON.parse(update.text) as Record<string, unknown>
  t.same(config.tenants, {
    granfjelldal: { client: 'keys/granfjelldal.json', clientId: 'new-client', organization: { parent: '999977774', child: '999977775' }, apis: ['persontjenesten'] }
  })
  t.same(config.logging, { level: 'warn' }, 'other sections are kept')
  t.match(update.text, /^\{\n\t"helseid"/, 'tab indentation kept')
  t.notOk(update.text.endsWith('\n'), 'no final newline added where there was none')
  t.same(update.changes, [
    'tenants.granfjelldal.client: keys/old.json → keys/granfjelldal.json',
    'tenants.granfjelldal.clientId: old-client → new-client',
    'tenants.granfjelldal.organization: child 999977776 → parent 999977774 child 999977775'
  ], 'each change is named')
})

t.test('errors: several APIs without --api, no APIs, invalid YAML, tenants not a mapping', async t => {
  const twoApis = head.replace('apis:\n', 'apis:\n  kjernejournal: { url: https://kj.test.nhn.no, scopes: [kj] }\n')
  t.throws(() => updateTenantConfig(twoApis, add), TenantApisNeededError)
  t.equal(updateTenantConfig(twoApis, { ...add, apis: ['kjernejournal'] }).method, 'edited')
  t.throws(() => updateTenantConfig('helseid: { environment: test }\n', add), new ConfigError(['apis: the config has no APIs; add the API the tenant is to use under apis: before importing']))
  t.throws(() => updateTenantConfig(`${head}tenants: [a, b]\n`, add), ConfigError)
  t.throws(() => updateTenantConfig('helseid: {\n  environment: test\n', add), ConfigError)
  t.throws(() => updateTenantConfig('a: 1\na: 2\n', add), ConfigError)
})
