import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parseAllDocuments } from 'yaml'
import { parseConfigText } from '../../src/config/load-config.ts'

const repo = new URL('../../../', import.meta.url)

t.test('the Kubernetes example is valid YAML and its embedded broker config parses', async t => {
  const documents = parseAllDocuments(await readFile(new URL('deploy/container/kubernetes.yaml', repo), 'utf8'))
  t.same(documents.flatMap(document => document.errors), [])
  const objects = documents.map(document => document.toJS() as { kind: string, data?: Record<string, string>, spec?: { containers: Array<{ name: string, securityContext?: Record<string, unknown> }> } })
  const configMap = objects.find(object => object.kind === 'ConfigMap')
  const config = parseConfigText(configMap?.data?.['helseid-broker.yaml'] ?? '', '/etc/helseid-broker/helseid-broker.yaml')
  t.equal(config.helseid.issuer, 'https://helseid-sts.nhn.no')
  t.equal(config.tenants.granfjelldal?.clientFile, '/etc/helseid-broker/keys/granfjelldal.json')
  const broker = objects.find(object => object.kind === 'Pod')?.spec?.containers.find(container => container.name === 'helseid-broker')
  t.match(broker?.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false })
})

t.test('the container image runs as a non-root user', async t => {
  const dockerfile = await readFile(new URL('deploy/container/Dockerfile', repo), 'utf8')
  const lines = dockerfile.split('\n')
  const lastUser = lines.filter(line => line.startsWith('USER ')).at(-1)
  t.equal(lastUser, 'USER node')
  t.ok(lines.indexOf(lastUser ?? '') < lines.findIndex(line => line.startsWith('ENTRYPOINT')), 'USER comes before ENTRYPOINT')
})
