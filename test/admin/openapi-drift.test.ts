// The repository's openapi.yaml is exactly what the admin listener serves at /openapi.json, and documents every admin route.

import t from 'tap'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { startTestBroker } from '../helpers/test-broker.ts'

// Compiled to dist/test/admin/; the file lives at the repository root.
const openapiFile = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url))
const regenerate = 'openapi.yaml is out of date with the admin listener\'s /openapi.json: run `npm run openapi` and commit openapi.yaml'

interface OpenApiDocument {
  readonly openapi: string
  readonly paths: Record<string, Record<string, { tags?: string[], responses?: Record<string, unknown> }>>
  readonly components: { readonly schemas: Record<string, unknown> }
}

async function readRepositoryDocument (): Promise<unknown> {
  let text: string
  try {
    text = await readFile(openapiFile, 'utf8')
  } catch (error) {
    throw new Error(`cannot read ${openapiFile} (${String(error)}); ${regenerate}`)
  }
  return parse(text)
}

/** The top-level routes in Fastify's route tree (the /docs subtree is folded under /docs). */
function topLevelRoutes (tree: string): Map<string, string[]> {
  const routes = new Map<string, string[]>()
  for (const line of tree.split('\n')) {
    const match = /^[├└]── (\/\S*) \(([^)]+)\)/.exec(line)
    if (match?.[1] !== undefined && match[2] !== undefined) routes.set(match[1], match[2].split(', '))
  }
  return routes
}

t.test('openapi.yaml equals what /openapi.json serves', async t => {
  const broker = await startTestBroker(t)

  const response = await broker.admin('/openapi.json')
  const served = await response.json() as unknown
  const committed = await readRepositoryDocument()

  t.equal(response.status, 200)
  t.strictSame(served, committed, regenerate)
})

t.test('the document is OpenAPI 3.1 with the admin routes, the proxy path and the shared schemas', async t => {
  const broker = await startTestBroker(t)

  const document = await (await broker.admin('/openapi.json')).json() as OpenApiDocument

  t.equal(document.openapi, '3.1.0')
  t.same(Object.keys(document.paths).sort(), ['/healthz', '/metrics', '/readyz', '/reload', '/status', '/{tenant}/{api}/{path}'].sort())
  t.same(Object.keys(document.paths['/reload'] ?? {}), ['post'], '/reload is a POST')
  for (const path of ['/healthz', '/readyz', '/metrics', '/status']) {
    t.same(Object.keys(document.paths[path] ?? {}), ['get'], `${path} is a GET`)
    t.same(document.paths[path]?.get?.tags, ['admin'], `${path} is tagged admin`)
    t.ok(document.paths[path]?.get?.responses?.['200'], `${path} documents its 200 response`)
  }
  t.same(Object.keys(document.paths['/readyz']?.get?.responses ?? {}).sort(), ['200', '503'])
  t.same(Object.keys(document.paths['/{tenant}/{api}/{path}'] ?? {}), ['servers', 'get', 'post', 'put', 'patch', 'delete'], 'the proxy path names its own listener')
  t.same(Object.keys(document.components.schemas).sort(), ['Problem', 'StatusReport'])

  const text = JSON.stringify(document)
  const refs = [...text.matchAll(/"\$ref":"([^"]+)"/g)].map(match => match[1])
  t.ok(refs.includes('#/components/schemas/StatusReport'), '/status refers to the StatusReport component')
  for (const ref of new Set(refs)) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(ref ?? '')?.[1]
    t.ok(name !== undefined && name in document.components.schemas, `${String(ref)} resolves inside the document`)
  }
  t.notMatch(text, /def-\d/, 'no generated def-N schema names')
  t.notMatch(text, /"\$id"/, 'no $id left from the Fastify shared schema')
})

t.test('every admin route Fastify serves is in the document, apart from the documentation itself', async t => {
  const broker = await startTestBroker(t)

  const document = await (await broker.admin('/openapi.json')).json() as OpenApiDocument
  const routes = topLevelRoutes(broker.broker.servers.admin.printRoutes({ commonPrefix: false }))

  t.same([...routes.keys()].sort(), ['/docs', '/healthz', '/metrics', '/openapi.json', '/readyz', '/reload', '/status'],
    'the admin listener serves what PRODUCT.md lists; a new route needs documenting here and in openapi.yaml')
  for (const [path, methods] of routes) {
    if (path === '/docs' || path === '/openapi.json') continue
    for (const method of methods.filter(m => m !== 'HEAD')) {
      t.ok(document.paths[path]?.[method.toLowerCase()], `${method} ${path} is documented`)
    }
  }
})
