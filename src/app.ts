// Composition root: builds the services once from config, then mounts them on the proxy and admin listeners.

import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Logger } from 'pino'
import { fetch as undiciFetch, type Dispatcher } from 'undici'
import { createEgressDispatcher, type ProxyEnvironment } from './http/egress.ts'
import { systemClock, type Clock } from './clock.ts'
import type { ApiConfig, BrokerConfig, ListenAddress } from './config/config.ts'
import { adminRoutes, type ReadinessCheck } from './admin/admin-routes.ts'
import { createMetrics, type BrokerMetrics } from './admin/metrics.ts'
import { completeDocument, openapiInfo } from './admin/openapi.ts'
import { buildStatusReport, statusReportSchema } from './admin/status.ts'
import { createDiscovery, type Discovery } from './helseid/discovery.ts'
import { createNonceStore } from './helseid/dpop-nonces.ts'
import type { FetchLike } from './helseid/fetch-like.ts'
import { createTokenClient } from './helseid/token-client.ts'
import { handleError, sendProblem, toProblem } from './http/problem.ts'
import type { TenantCredentials } from './keys/tenant-keys.ts'
import { createForwarder } from './proxy/forwarder.ts'
import { proxyRoutes } from './proxy/proxy-routes.ts'
import { requestLabels } from './proxy/request-labels.ts'
import { createUpstreamAgent } from './proxy/upstream.ts'
import { createTenantRuntimes, type TenantRuntime } from './tenants.ts'
import { createTokenService, type TokenService } from './tokens/token-service.ts'
import type { RetryPolicy } from './tokens/retry.ts'

/** What can be swapped from outside: tests pass a manual clock, a log sink, fast retries. */
export interface DependencyOptions {
  readonly clock?: Clock
  readonly fetch?: FetchLike
  readonly retry?: RetryPolicy
  /** Proxy variables (HTTPS_PROXY, NO_PROXY…); default process.env, read once here. */
  readonly env?: ProxyEnvironment
}

/** The services, built once at start-up. */
export interface BrokerDependencies {
  readonly config: BrokerConfig
  readonly clock: Clock
  readonly logger: Logger
  readonly metrics: BrokerMetrics
  readonly discovery: Discovery
  readonly tokens: TokenService
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  readonly startedAtMs: number
  /** The keep-alive pool of one API. */
  readonly agentFor: (api: ApiConfig) => Dispatcher
  /** Releases connection pools. */
  readonly close: () => Promise<void>
}

/** Builds every service from a parsed config and loaded credentials. */
export async function createDependencies (
  config: BrokerConfig,
  credentials: ReadonlyMap<string, TenantCredentials>,
  logger: Logger,
  options: DependencyOptions = {}
): Promise<BrokerDependencies> {
  const clock = options.clock ?? systemClock
  const metrics = createMetrics()
  const env = options.env ?? process.env
  const idpAgent = createEgressDispatcher(config.egress.proxy, env, { keepAliveTimeout: 30_000, connect: { timeout: config.helseid.timeoutMs } })
  const fetch: FetchLike = options.fetch ?? (async (url, init) => await undiciFetch(url, { ...init, dispatcher: idpAgent }))
  const discovery = createDiscovery({ issuer: config.helseid.issuer, fetch, clock, timeoutMs: config.helseid.timeoutMs })
  const tokenLogger = logger.child({ module: 'tokens' })
  const client = createTokenClient({
    discovery,
    fetch,
    clock,
    nonces: createNonceStore(),
    timeoutMs: config.helseid.timeoutMs,
    onNonceRequested: () => { tokenLogger.debug('idp nonce requested') }
  })
  const tokens = createTokenService({
    client,
    clock,
    logger: tokenLogger,
    metrics,
    ...(options.retry === undefined ? {} : { retry: options.retry })
  })
  const tenants = await createTenantRuntimes(config, credentials)
  const agents = new Map<string, Dispatcher>()
  return {
    config,
    clock,
    logger,
    metrics,
    discovery,
    tokens,
    tenants,
    startedAtMs: clock.nowMs(),
    agentFor (api: ApiConfig): Dispatcher {
      let agent = agents.get(api.name)
      if (agent === undefined) {
        agent = createUpstreamAgent(api, config.egress.proxy, env)
        agents.set(api.name, agent)
      }
      return agent
    },
    async close () {
      await Promise.all([idpAgent.close(), ...[...agents.values()].map(async agent => { await agent.close() })])
    }
  }
}

/** The two listeners, built but not yet listening. */
export interface BrokerServers {
  readonly proxy: FastifyInstance
  readonly admin: FastifyInstance
}

/** Mounts ready-made services on the proxy and admin listeners. */
export async function buildServers (deps: BrokerDependencies): Promise<BrokerServers> {
  const loggerInstance = deps.logger as unknown as FastifyBaseLogger
  const common = {
    loggerInstance,
    // Request lines are ours (logRequest): by allowlist, one per request.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    requestIdHeader: false as const,
    return503OnClosing: true
  }

  const proxy = Fastify(common)
  proxy.setErrorHandler(handleError)
  proxy.setNotFoundHandler((request, reply) => sendProblem(reply,
    toProblem('BROKER_METHOD_NOT_ALLOWED', `method ${request.method} is not proxied`, request.id)))
  proxy.addHook('onResponse', async (request, reply) => {
    const labels = requestLabels.get(request.raw)
    if (labels !== undefined) deps.metrics.requests.inc({ ...labels, method: request.method, status: String(reply.statusCode) })
    logRequest(request, reply)
  })
  const forward = createForwarder({ tokens: deps.tokens, nonces: createNonceStore(), clock: deps.clock, metrics: deps.metrics, agentFor: deps.agentFor })
  await proxy.register(proxyRoutes, { tenants: deps.tenants, forward })

  const admin = Fastify(common)
  admin.setErrorHandler(handleError)
  // The path is not echoed: a mistaken proxy call on this port may carry personal data in it.
  admin.setNotFoundHandler((request, reply) => sendProblem(reply,
    toProblem('BROKER_NOT_FOUND', `no admin route answers this ${request.method} request; this listener serves GET /healthz, /readyz, /metrics, /status, /docs and /openapi.json`, request.id)))
  admin.addHook('onResponse', async (request, reply) => { logRequest(request, reply) })
  admin.addSchema(statusReportSchema)
  await admin.register(swagger, {
    openapi: openapiInfo,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => typeof json.$id === 'string' ? json.$id : `def-${index}` },
    transformObject: (document) => completeDocument('openapiObject' in document ? document.openapiObject : document.swaggerObject)
  })
  await admin.register(swaggerUi, { routePrefix: '/docs' })
  admin.get('/openapi.json', { schema: { hide: true } }, async () => admin.swagger())
  await admin.register(adminRoutes, {
    metrics: deps.metrics,
    readiness: () => readiness(deps),
    status: () => buildStatusReport({
      issuer: deps.config.helseid.issuer,
      startedAtMs: deps.startedAtMs,
      clock: deps.clock,
      tenants: deps.tenants,
      isDiscoveryFetched: () => deps.discovery.current() !== undefined,
      tokens: deps.tokens.snapshot
    }),
    beforeMetrics: () => {
      const nowMs = deps.clock.nowMs()
      deps.metrics.tokenExpiry.reset()
      for (const token of deps.tokens.snapshot()) {
        deps.metrics.tokenExpiry.set({ tenant: token.tenant, api: token.api }, Math.max(0, (token.expiresAtMs - nowMs) / 1000))
      }
    }
  })
  return { proxy, admin }
}

/** One line per request, by allowlist: method, masked path (no query), tenant, API, status, duration, request id. */
function logRequest (request: FastifyRequest, reply: FastifyReply): void {
  const labels = requestLabels.get(request.raw)
  request.log.info({
    req: request.raw,
    tenant: labels?.tenant,
    api: labels?.api,
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 10) / 10
  }, 'request completed')
}

function readiness (deps: BrokerDependencies): readonly ReadinessCheck[] {
  const metadata = deps.discovery.current()
  if (metadata === undefined) deps.discovery.get().catch(() => {}) // try again; the next probe sees the result
  return [
    { name: 'keys', isReady: deps.tenants.size > 0, detail: `${deps.tenants.size} tenant key(s) loaded` },
    {
      name: 'discovery',
      isReady: metadata !== undefined,
      detail: metadata === undefined
        ? deps.discovery.lastError() ?? `HelseID discovery not yet fetched from ${deps.config.helseid.issuer}`
        : `token endpoint ${metadata.tokenEndpoint}`
    }
  ]
}

/** A running broker. */
export interface RunningBroker {
  readonly deps: BrokerDependencies
  readonly servers: BrokerServers
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly close: () => Promise<void>
}

/** Builds, fetches discovery (a failure is logged, readiness stays false) and listens on both addresses. */
export async function startBroker (
  config: BrokerConfig,
  credentials: ReadonlyMap<string, TenantCredentials>,
  logger: Logger,
  options: DependencyOptions & { readonly listen?: { readonly proxy: ListenAddress, readonly admin: ListenAddress } } = {}
): Promise<RunningBroker> {
  const deps = await createDependencies(config, credentials, logger, options)
  try {
    await deps.discovery.get()
  } catch (error) {
    logger.warn({ err: error, issuer: config.helseid.issuer }, 'helseid discovery failed at start-up; will retry')
  }
  const servers = await buildServers(deps)
  const listen = options.listen ?? config.listen
  const proxyUrl = await servers.proxy.listen({ host: listen.proxy.host, port: listen.proxy.port })
  let adminUrl: string
  try {
    adminUrl = await servers.admin.listen({ host: listen.admin.host, port: listen.admin.port })
  } catch (error) {
    await servers.proxy.close()
    throw error
  }
  return {
    deps,
    servers,
    proxyUrl,
    adminUrl,
    async close () {
      await Promise.all([servers.proxy.close(), servers.admin.close()])
      await deps.close()
    }
  }
}
