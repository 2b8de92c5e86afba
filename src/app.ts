// Composition root: builds the services once from config, then mounts them on the proxy and admin listeners.

import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Logger } from 'pino'
import { fetch as undiciFetch, type Dispatcher } from 'undici'
import { createEgressDispatcher, type ProxyEnvironment } from './http/egress.ts'
import { loadCaCertificates } from './http/ca-file.ts'
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
import { errorHeader, handleError, sendProblem, toProblem } from './http/problem.ts'
import type { TenantCredentials } from './keys/tenant-keys.ts'
import { createForwarder } from './proxy/forwarder.ts'
import { proxyRoutes } from './proxy/proxy-routes.ts'
import { requestContext } from './proxy/request-labels.ts'
import { createAuditLog, upstreamRequestIdOf, type AuditLog } from './security/audit-log.ts'
import { createCallerAuthenticator } from './security/caller-auth.ts'
import type { CallerSecret } from './security/caller-secrets.ts'
import { handleClientError, handleFrameworkError } from './security/client-error.ts'
import { createConcurrencyLimit } from './security/concurrency-limit.ts'
import { createRateLimiter } from './security/rate-limiter.ts'
import { createRequestGuard } from './security/request-guards.ts'
import { createKeyExpiryService, keyExpiryReadiness, type KeyExpiryService } from './selvbetjening/key-expiry.ts'
import { createSelvbetjeningClient, type SelvbetjeningClient } from './selvbetjening/selvbetjening-client.ts'
import { maskPath } from './logging.ts'
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
  /** Loaded caller secrets (loadCallerSecrets); required when the config has callers. */
  readonly callerSecrets?: ReadonlyMap<string, CallerSecret>
  /** startBroker: read key expiry from Selvbetjening at start and every keys.expiryCheckHours; default true. */
  readonly checkKeyExpiry?: boolean
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
  readonly callerSecrets: ReadonlyMap<string, CallerSecret>
  readonly audit: AuditLog
  /** The Selvbetjening client-secret API (helseid.selvbetjeningUrl), with tokens from `tokens`. */
  readonly selvbetjening: SelvbetjeningClient
  /** Client key expiry per distinct key; startBroker starts its checks. */
  readonly keyExpiry: KeyExpiryService
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
  const extraCa = config.egress.caFile === undefined ? [] : await loadCaCertificates(config.egress.caFile)
  const idpAgent = createEgressDispatcher(config.egress.proxy, env, { keepAliveTimeout: 30_000, connect: { timeout: config.helseid.timeoutMs } }, extraCa)
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
  const selvbetjening = createSelvbetjeningClient({
    baseUrl: config.helseid.selvbetjeningUrl,
    tokens,
    fetch,
    clock,
    timeoutMs: config.helseid.timeoutMs,
    logger: logger.child({ module: 'selvbetjening' })
  })
  const keyExpiry = createKeyExpiryService({
    tenants,
    client: selvbetjening,
    clock,
    logger: logger.child({ module: 'keys' }),
    warnDays: config.keys.warnDays,
    checkIntervalMs: config.keys.expiryCheckHours * 3_600_000
  })
  const agents = new Map<string, Dispatcher>()
  const audit = createAuditLog(config.audit.file)
  if (config.callers !== undefined) {
    const missing = Object.keys(config.callers).filter(name => options.callerSecrets?.get(name) === undefined)
    if (missing.length > 0) throw new TypeError(`no secret loaded for caller(s) ${missing.join(', ')}`)
  }
  return {
    config,
    clock,
    logger,
    metrics,
    discovery,
    tokens,
    tenants,
    startedAtMs: clock.nowMs(),
    callerSecrets: options.callerSecrets ?? new Map(),
    audit,
    selvbetjening,
    keyExpiry,
    agentFor (api: ApiConfig): Dispatcher {
      let agent = agents.get(api.name)
      if (agent === undefined) {
        agent = createUpstreamAgent(api, config.egress.proxy, env, extraCa)
        agents.set(api.name, agent)
      }
      return agent
    },
    async close () {
      keyExpiry.stop()
      await Promise.all([idpAgent.close(), ...[...agents.values()].map(async agent => { await agent.close() })])
      await audit.close()
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
    return503OnClosing: true,
    // Router errors (undecodable paths) as problem+json, never echoing the path.
    frameworkErrors: handleFrameworkError
  }

  const { config } = deps
  const limits = config.limits
  const proxy = Fastify({
    ...common,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    http: {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: Math.min(limits.requestTimeoutMs, 60_000),
      // Node checks request timeouts on this interval; the default (30 s) would let slow senders linger.
      connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(limits.requestTimeoutMs / 4)))
    },
    clientErrorHandler: handleClientError
  })
  proxy.setErrorHandler(handleError)
  proxy.setNotFoundHandler((request, reply) => sendProblem(reply,
    toProblem('BROKER_METHOD_NOT_ALLOWED', `method ${request.method} is not proxied`, request.id)))
  proxy.addHook('onResponse', async (request, reply) => {
    const context = requestContext(request.raw)
    if (context.tenant !== undefined && context.api !== undefined) {
      deps.metrics.requests.inc({ tenant: context.tenant, api: context.api, method: request.method, status: String(reply.statusCode) })
    }
    logRequest(request, reply)
    const code = reply.getHeader(errorHeader)
    deps.audit.record({
      requestId: request.id,
      caller: context.caller?.name,
      tenant: context.tenant,
      api: context.api,
      method: request.method,
      path: maskPath(request.raw.url ?? ''),
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      code: typeof code === 'string' ? code : undefined,
      upstreamRequestId: context.upstreamHeaders === undefined ? undefined : upstreamRequestIdOf(context.upstreamHeaders)
    })
  })
  const forward = createForwarder({ tokens: deps.tokens, nonces: createNonceStore(), clock: deps.clock, metrics: deps.metrics, agentFor: deps.agentFor })
  const hostnames = [...config.listen.hostnames, config.listen.proxy.host, config.listen.admin.host]
  await proxy.register(proxyRoutes, {
    tenants: deps.tenants,
    forward,
    guard: createRequestGuard({ hostnames, allowedOrigins: config.browser.allowedOrigins, isLoopbackOnly: config.callers === undefined }),
    ...(config.callers === undefined ? {} : { authenticate: createCallerAuthenticator(config.callers, deps.callerSecrets) }),
    rateLimiter: createRateLimiter(deps.clock),
    upstreamSlots: createConcurrencyLimit(limits.maxConcurrentUpstream),
    limits
  })

  const admin = Fastify(common)
  admin.setErrorHandler(handleError)
  // The path is not echoed: a mistaken proxy call on this port may carry personal data in it.
  admin.setNotFoundHandler((request, reply) => sendProblem(reply,
    toProblem('BROKER_NOT_FOUND', `no admin route answers this ${request.method} request; this listener serves GET /healthz, /readyz, /metrics, /status, /docs and /openapi.json`, request.id)))
  const adminGuard = createRequestGuard({ hostnames, allowedOrigins: config.browser.allowedOrigins, isLoopbackOnly: false })
  admin.addHook('onRequest', async request => { adminGuard(request.headers, request.socket.remoteAddress, request.socket.localPort) })
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
      tokens: deps.tokens.snapshot,
      keyExpiry: deps.keyExpiry.forTenant
    }),
    beforeMetrics: () => {
      const nowMs = deps.clock.nowMs()
      deps.metrics.tokenExpiry.reset()
      for (const token of deps.tokens.snapshot()) {
        deps.metrics.tokenExpiry.set({ tenant: token.tenant, api: token.api }, Math.max(0, (token.expiresAtMs - nowMs) / 1000))
      }
      deps.metrics.keyExpiry.reset()
      for (const key of deps.keyExpiry.snapshot()) {
        if (key.expiresAtMs === null) continue
        for (const tenant of key.tenants) deps.metrics.keyExpiry.set({ tenant, kid: key.kid }, (key.expiresAtMs - nowMs) / 1000)
      }
    }
  })
  return { proxy, admin }
}

/** One line per request, by allowlist: method, masked path (no query), tenant, API, status, duration, request id. */
function logRequest (request: FastifyRequest, reply: FastifyReply): void {
  const labels = requestContext(request.raw)
  request.log.info({
    req: request.raw,
    tenant: labels.tenant,
    api: labels.api,
    caller: labels.caller?.name,
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 10) / 10
  }, 'request completed')
}

function readiness (deps: BrokerDependencies): readonly ReadinessCheck[] {
  const metadata = deps.discovery.current()
  if (metadata === undefined) deps.discovery.get().catch(() => {}) // try again; the next probe sees the result
  const keyExpiry = deps.keyExpiry.isStarted()
    ? [{ name: 'keyExpiry', ...keyExpiryReadiness(deps.keyExpiry.snapshot(), deps.keyExpiry.warnDays) }]
    : []
  return [
    { name: 'keys', isReady: deps.tenants.size > 0, detail: `${deps.tenants.size} tenant key(s) loaded` },
    {
      name: 'discovery',
      isReady: metadata !== undefined,
      detail: metadata === undefined
        ? deps.discovery.lastError() ?? `HelseID discovery not yet fetched from ${deps.config.helseid.issuer}`
        : `token endpoint ${metadata.tokenEndpoint}`
    },
    ...keyExpiry
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
  // Never blocks or fails start-up: the first round runs in the background; failures are logged and shown in /status and /readyz.
  if (options.checkKeyExpiry !== false) deps.keyExpiry.start()
  let closing: Promise<void> | undefined
  return {
    deps,
    servers,
    proxyUrl,
    adminUrl,
    close: async () => {
      closing ??= Promise.all([servers.proxy.close(), servers.admin.close()]).then(async () => { await deps.close() })
      await closing
    }
  }
}
