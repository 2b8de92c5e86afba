// The parts of the OpenAPI document that no admin route schema yields: the proxy listener and the problem body.

import { errorCatalogue } from '../errors.ts'

/** JSON schema of every error body the broker produces. */
export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code', 'requestId'],
  properties: {
    type: { type: 'string', description: 'urn:helseid-broker:error:{code}' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'What was wrong; never holds tokens, keys or personal data.' },
    code: { type: 'string', enum: Object.keys(errorCatalogue) },
    requestId: { type: 'string' },
    oauthError: { type: 'string', description: 'With BROKER_IDP_REJECTED: the OAuth error HelseID returned.' }
  }
} as const

const problemResponse = (description: string): Record<string, unknown> => ({
  description,
  headers: { 'helseid-broker-error': { schema: { type: 'string' }, description: 'The BROKER_* code; absent on upstream responses.' } },
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }
})

const proxyOperation = (method: string): Record<string, unknown> => ({
  tags: ['proxy'],
  summary: `${method} through the broker to the API`,
  description: 'Served on the proxy listener (default 127.0.0.1:8480), not on the admin listener. Forwarded to `{apis[api].url}/{path}?{query}` with `Authorization: DPoP <token>`, a fresh DPoP proof and the API\'s static headers; the caller\'s Authorization, DPoP, Cookie and hop-by-hop headers are removed. The upstream response comes back unchanged.',
  operationId: `proxy${method[0]}${method.slice(1).toLowerCase()}`,
  parameters: [
    { name: 'tenant', in: 'path', required: true, schema: { type: 'string' } },
    { name: 'api', in: 'path', required: true, schema: { type: 'string' } },
    { name: 'path', in: 'path', required: true, schema: { type: 'string' }, description: 'The rest of the path, below the API base URL.' }
  ],
  responses: {
    default: { description: 'The upstream API\'s response, as it is.' },
    400: problemResponse('BROKER_PATH_REJECTED, BROKER_BAD_REQUEST'),
    404: problemResponse('BROKER_TENANT_NOT_FOUND, BROKER_API_NOT_FOUND, BROKER_NOT_FOUND'),
    502: problemResponse('BROKER_UPSTREAM_UNREACHABLE, BROKER_IDP_REJECTED, BROKER_IDP_BAD_RESPONSE'),
    503: problemResponse('BROKER_IDP_UNREACHABLE: HelseID unreachable and no valid cached token'),
    504: problemResponse('BROKER_UPSTREAM_TIMEOUT')
  }
})

/** Adds the proxy path and shared schemas to the document @fastify/swagger builds from the admin routes. */
export function completeDocument<T extends object> (document: T): T {
  const doc = document as { paths?: Record<string, unknown>, components?: { schemas?: Record<string, unknown> } }
  doc.paths = {
    ...doc.paths,
    '/{tenant}/{api}/{path}': {
      // The proxy route lives on the other listener: point "try it out" there.
      servers: [{ url: 'http://127.0.0.1:8480', description: 'proxy listener (default address)' }],
      ...Object.fromEntries(['get', 'post', 'put', 'patch', 'delete'].map(method => [method, proxyOperation(method.toUpperCase())]))
    }
  }
  // Problem is registered on the admin listener (POST /reload answers with it); add it if no route used it.
  doc.components = { ...doc.components, schemas: { Problem: problemSchema, ...doc.components?.schemas } }
  return document
}

/** Document metadata. */
export const openapiInfo: { openapi: string, info: { title: string, version: string, description: string }, tags: Array<{ name: string, description: string }> } = {
  openapi: '3.1.0',
  info: {
    title: 'helseid-broker',
    version: '0.1.0',
    description: 'HelseID token broker sidecar. Admin listener: health, readiness, metrics, status, docs. Proxy listener: `/{tenant}/{api}/{path}`.'
  },
  tags: [
    { name: 'admin', description: 'Admin listener (default 127.0.0.1:8481)' },
    { name: 'proxy', description: 'Proxy listener (default 127.0.0.1:8480)' }
  ]
}
