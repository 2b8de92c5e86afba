// Tests for loadConfig and parseConfigText: file errors, YAML errors with positions, JSON input, the shipped example.

import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultLimits } from '../../src/config/defaults.ts'
import { loadConfig, parseConfigText } from '../../src/config/load-config.ts'
import { ConfigError } from '../../src/errors.ts'

const minimalYaml = `helseid: { environment: test }
apis:
  pt: { url: "https://api.example.no", scopes: [s] }
tenants:
  fjordvik: { client: keys/k.json, apis: [pt] }
`

t.test('loads a file and resolves client paths against its directory', async t => {
  const dir = t.testdir({ 'broker.yaml': minimalYaml })

  const config = await loadConfig(join(dir, 'broker.yaml'))

  t.equal(config.source, join(dir, 'broker.yaml'))
  t.equal(config.tenants.fjordvik?.clientFile, join(dir, 'keys', 'k.json'))
})

t.test('a relative file name resolves against the working directory', async t => {
  const dir = t.testdir({ 'broker.yaml': minimalYaml })
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(cwd) })

  const config = await loadConfig('broker.yaml')

  t.equal(config.source, join(process.cwd(), 'broker.yaml'))
})

t.test('an unreadable file is a ConfigError naming the file and the OS error', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'missing.yaml')

  await t.rejects(loadConfig(file), new ConfigError([`(file): cannot read ${file}: ENOENT (no such file)`]))
  await t.rejects(loadConfig(dir), new ConfigError([`(file): cannot read ${dir}: EISDIR (it is a directory)`]))
})

t.test('YAML syntax errors are reported with line and column', async t => {
  const error = t.throws(() => parseConfigText('helseid:\n  environment: prod\napis: [a,\n  b: : c\n', '/x/y.yaml')) as ConfigError

  t.ok(error instanceof ConfigError)
  t.match(error.issues[0], /^\(yaml\) line 4, column \d+: /)
  t.notMatch(error.issues[0], /\n/)
})

t.test('duplicate keys and unknown tags are errors, not silent choices', async t => {
  t.same((t.throws(() => parseConfigText('helseid: {}\nhelseid: {}\n', '/x/y.yaml')) as ConfigError).issues, [
    '(yaml) line 2, column 1: Map keys must be unique'
  ])
  t.match((t.throws(() => parseConfigText('helseid: !secret x\n', '/x/y.yaml')) as ConfigError).issues, [/^\(yaml\) line 1, column 10: Unresolved tag: !secret/])
})

t.test('an empty file says so', async t => {
  t.same((t.throws(() => parseConfigText('# nothing yet\n', '/x/y.yaml')) as ConfigError).issues, [
    '(root): the config is empty; expected a mapping with helseid, apis and tenants'
  ])
})

t.test('JSON is accepted, with or without a byte order mark', async t => {
  const json = JSON.stringify({ helseid: { environment: 'prod' }, apis: { pt: { url: 'https://api.example.no', scopes: ['s'] } }, tenants: { a: { client: 'k.json', apis: ['pt'] } } })
  const dir = t.testdir({})
  await writeFile(join(dir, 'broker.json'), `\uFEFF${json}`)

  t.equal(parseConfigText(json, '/x/y.json').helseid.issuer, 'https://helseid-sts.nhn.no')
  t.equal((await loadConfig(join(dir, 'broker.json'))).tenants.a?.clientFile, join(dir, 'k.json'))
})

t.test('the shipped example config is valid', async t => {
  const example = fileURLToPath(new URL('../../../deploy/helseid-broker.example.yaml', import.meta.url))

  const config = await loadConfig(example)

  t.same(Object.keys(config.tenants), ['granfjelldal', 'fjordvik'])
  t.equal(config.egress.proxy, 'http://proxy.kommune.no:3128')
  t.same(config.apis.persontjenesten?.headers, { 'Api-Version': '3' })
  t.match(config.callers?.epj, { secret: { kind: 'file', file: join(dirname(example), 'secrets', 'epj.secret') }, tenants: ['granfjelldal'], apis: ['persontjenesten'] })
  t.same(config.limits, defaultLimits, 'the example shows the defaults')
})
