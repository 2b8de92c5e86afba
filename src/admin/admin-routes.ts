// The admin listener: liveness, readiness, metrics, status; never a token or a key.

import type { FastifyPluginAsync } from 'fastify'
import type { BrokerMetrics } from './metrics.ts'
import type { StatusReport } from './status.ts'

/** One readiness check. */
export interface ReadinessCheck {
  readonly name: string
  readonly isReady: boolean
  readonly detail: string
}

export interface AdminRoutesOptions {
  readonly metrics: BrokerMetrics
  readonly readiness: () => readonly ReadinessCheck[]
  readonly status: () => StatusReport
  /** Called before /metrics renders, to set gauges computed on demand. */
  readonly beforeMetrics?: () => void
}

const checkSchema = {
  type: 'object',
  required: ['name', 'isReady', 'detail'],
  properties: { name: { type: 'string' }, isReady: { type: 'boolean' }, detail: { type: 'string' } }
} as const

const readinessSchema = {
  type: 'object',
  required: ['status', 'checks'],
  properties: { status: { type: 'string', enum: ['ready', 'not ready'] }, checks: { type: 'array', items: checkSchema } }
} as const

/** Mounts /healthz, /readyz, /metrics and /status. */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, options) => {
  app.get('/healthz', {
    schema: {
      tags: ['admin'],
      summary: 'Liveness: the process is running',
      response: { 200: { description: 'The process is running.', type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } }
    }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      tags: ['admin'],
      summary: 'Readiness: keys loaded, HelseID discovery fetched, no client key expired',
      description: 'Checks `keys` and `discovery`; with key expiry monitoring also `keyExpiry`, whose detail says how many days each key has left. A key about to expire (fewer than keys.warnDays) stays ready; an expired key makes the broker not ready.',
      response: {
        200: { description: 'Ready: every check passed.', ...readinessSchema },
        503: { description: 'Not ready: the failing checks say why.', ...readinessSchema }
      }
    }
  }, async (_request, reply) => {
    const checks = options.readiness()
    const isReady = checks.every(check => check.isReady)
    return await reply.code(isReady ? 200 : 503).send({ status: isReady ? 'ready' : 'not ready', checks })
  })

  app.get('/metrics', {
    schema: {
      tags: ['admin'],
      summary: 'Prometheus metrics (text exposition format)',
      produces: ['text/plain'],
      response: { 200: { type: 'string', description: 'Prometheus text exposition format 0.0.4.' } }
    }
  }, async (_request, reply) => {
    options.beforeMetrics?.()
    const text = await options.metrics.registry.metrics()
    return await reply.header('content-type', options.metrics.registry.contentType).send(text)
  })

  app.get('/status', {
    schema: {
      tags: ['admin'],
      summary: 'Tenants, key ids, key expiry, cached token lifetimes and scopes (never a token or key)',
      response: { 200: { description: 'Tenants, keys and cached token lifetimes.', $ref: 'StatusReport#' } }
    }
  }, async () => options.status())
}
