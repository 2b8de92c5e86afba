// Composition root: builds the services once from config, then mounts them on the proxy and admin listeners.

import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
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
import { completeDocument, openapiInfo, problemSchema } from './admin/openapi.ts'
import { buildStatusReport, statusReportSchema } from './admin/status.ts'
import { createDiscovery, type Discovery } from './helseid/discovery.ts'
import { createNonceStore } from './helseid/dpop-nonces.ts'
import type { FetchLike } from './helseid/fetch-like.ts'
import { createTokenClient } from './helseid/token-client.ts'
import { handleError, sendProblem, toProblem } from './http/problem.ts'
import { BrokerError, ConfigError } from './errors.ts'
import type { TenantCredentials } from './keys/tenant-keys.ts'
import { createForwarder } from './proxy/forwarder.ts'
import { createProxyPolicy, type ProxyPolicy } from './proxy/proxy-policy.ts'
import { reloadBroker, type LoadedConfig } from './reload.ts'
import { createProxyServer, type ProxyServer } from './proxy/proxy-server.ts'
import { createRequestLines, createRequestRecorder } from './proxy/request-record.ts'
import { createAuditLog, type AuditLog } from './security/audit-log.ts'
import type { CallerSecret } from './security/caller-secrets.ts'
import { handleFrameworkError } from './security/client-error.ts'
import { createConcurrencyLimit } from './security/concurrency-limit.ts'
import { createRateLimiter } from './security/rate-limiter.ts'
import { createKeyExpiryService, keyExpiryReadiness, type KeyExpiryService } from './selvbetjening/key-expiry.ts'
import { createKeyRotationService, type KeyRotationService } from './selvbetjening/key-rotation-service.ts'
import { createSelvbetjeningClient, type SelvbetjeningClient } from './selvbetjening/selvbetjening-client.ts'
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
  /** Loads the config file again, for reloads (SIGHUP, POST /reload); without it the broker cannot reload. */
  readonly load?: () => Promise<LoadedConfig>
  /** How long close() lets in-flight requests finish before cutting connections; default 25 s. */
  readonly drainTimeoutMs?: number
}

/** The services, built once at start-up. */
export interface BrokerDependencies {
  readonly config: BrokerConfig
  readonly clock: Clock
  readonly logger: Logger
  readonly metrics: BrokerMetrics
  readonly discovery: Discovery
  readonly tokens: TokenService
  /** The tenants in force (a reload replaces them). */
  readonly tenants: ReadonlyMap<string, TenantRuntime>
  /** The proxy policy in force (a reload replaces it). */
  readonly policy: () => ProxyPolicy
  /** Swaps in a new config, tenants and caller secrets (see reload.ts); the caller has checked what may change. */
  readonly applyReload: (config: BrokerConfig, tenants: ReadonlyMap<string, TenantRuntime>, callerSecrets: ReadonlyMap<string, CallerSecret>) => void
  readonly startedAtMs: number
  /** Loads and applies the config file again. @throws ConfigError (nothing changed then) */
  readonly reload?: () => Promise<void>
  /** Set while closing: readiness goes false so that load balancers stop sending. */
  readonly lifecycle: { isDraining: boolean }
  readonly audit: AuditLog
  /** The Selvbetjening client-secret API (helseid.selvbetjeningUrl), with tokens from `tokens`. */
  readonly selvbetjening: SelvbetjeningClient
  /** Client key expiry per distinct key; startBroker starts its checks. */
  readonly keyExpiry: KeyExpiryService
  /** Pending keys of interrupted rotations (resolved at start) and keys.autoRotate; startBroker starts it. */
  readonly keyRotation: KeyRotationService
  /** Certificates from egress.caFile (PEM), trusted besides Node's bundled roots on every outbound call. */
  readonly extraCa: readonly string[]
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
  // Checked before anything is opened (connection pools, the audit file), so that this refusal leaves nothing behind.
  if (config.callers !== undefined) {
    const missing = Object.keys(config.callers).filter(name => options.callerSecrets?.get(name) === undefined)
    if (missing.length > 0) throw new TypeError(`no secret loaded for caller(s) ${missing.join(', ')}`)
  }
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
    currentTenants: () => live.tenants,
    client: selvbetjening,
    clock,
    logger: logger.child({ module: 'keys' }),
    warnDays: config.keys.warnDays,
    checkIntervalMs: config.keys.expiryCheckHours * 3_600_000
  })
  const keyRotation = createKeyRotationService({
    tenants: () => live.tenants, selvbetjening, tokens, keyExpiry, clock, logger: logger.child({ module: 'keys' }), keys: config.keys
  })
  const agents = new Map<string, Dispatcher>()
  const audit = createAuditLog(config.audit.file)
  let live = { config, tenants, policy: createProxyPolicy(config, tenants, options.callerSecrets ?? new Map()) }
  let reloading: Promise<void> | undefined
  const load = options.load
  const deps: BrokerDependencies = {
    get config () { return live.config },
    clock,
    logger,
    metrics,
    discovery,
    tokens,
    get tenants () { return live.tenants },
    policy: () => live.policy,
    applyReload (newConfig, newTenants, callerSecrets) {
      live = { config: newConfig, tenants: newTenants, policy: createProxyPolicy(newConfig, newTenants, callerSecrets) }
      logger.level = newConfig.logging.level
    },
    startedAtMs: clock.nowMs(),
    ...(load === undefined
      ? {}
      : {
          reload: async () => {
            // One reload at a time; a reload asked for during one waits for it, then runs anew.
            while (reloading !== undefined) await reloading.catch(() => {})
            reloading = load().then(async loaded => { await reloadBroker(deps, loaded) }).finally(() => { reloading = undefined })
            await reloading
          }
        }),
    lifecycle: { isDraining: false },
    audit,
    selvbetjening,
    keyExpiry,
    keyRotation,
    extraCa,
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
      keyRotation.stop()
      await Promise.all([idpAgent.close(), ...[...agents.values()].map(async agent => { await agent.close() })])
      await audit.close()
    }
  }
  return deps
}

/** The two listeners, built but not yet listening. */
export interface BrokerServers {
  readonly proxy: ProxyServer
  readonly admin: FastifyInstance
}

/** Mounts ready-made services on the proxy and admin listeners. */
export async function buildServers (deps: BrokerDependencies): Promise<BrokerServers> {
  const { config } = deps
  const limits = config.limits
  const writeLine = createRequestLines(deps.logger)
  const recorder = createRequestRecorder({
    writeLine,
    metrics: deps.metrics,
    audit: deps.audit,
    isAuditEnabled: () => deps.config.audit.file !== undefined
  })
  const upstreamSlots = createConcurrencyLimit(limits.maxConcurrentUpstream)
  const proxy = createProxyServer(limits, {
    policy: deps.policy,
    forward: createForwarder({
      tokens: deps.tokens,
      nonces: createNonceStore(),
      clock: deps.clock,
      metrics: deps.metrics,
      agentFor: deps.agentFor,
      isBusy: () => upstreamSlots.inFlight() > 1
    }),
    rateLimiter: createRateLimiter(deps.clock),
    upstreamSlots,
    logger: deps.logger,
    onComplete: recorder.record
  })

  // The admin listener is Fastify (schemas, OpenAPI, Swagger UI); the proxy listener is plain node:http (the hot path).
  const admin = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    // Request lines are ours (createRequestLines): by allowlist, one per request.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    requestIdHeader: false as const,
    return503OnClosing: true,
    // Router errors (undecodable paths) as problem+json, never echoing the path.
    frameworkErrors: handleFrameworkError
  })
  admin.setErrorHandler(handleError)
  // The path is not echoed: a mistaken proxy call on this port may carry personal data in it.
  admin.setNotFoundHandler((request, reply) => sendProblem(reply,
    toProblem('BROKER_NOT_FOUND', `no admin route answers this ${request.method} request; this listener serves GET /healthz, /readyz, /metrics, /status, /docs and /openapi.json`, request.id)))
  admin.addHook('onRequest', async request => { deps.policy().adminGuard(request.headers, request.socket.remoteAddress, request.socket.localPort) })
  admin.addHook('onResponse', async (request, reply) => {
    writeLine({ requestId: request.id, request: request.raw, status: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 10) / 10 })
  })
  admin.addSchema(statusReportSchema)
  admin.addSchema({ $id: 'Problem', ...problemSchema })
  await admin.register(swagger, {
    openapi: openapiInfo,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => typeof json.$id === 'string' ? json.$id : `def-${index}` },
    transformObject: (document) => completeDocument('openapiObject' in document ? document.openapiObject : document.swaggerObject)
  })
  await admin.register(swaggerUi, { routePrefix: '/docs' })
  admin.get('/openapi.json', { schema: { hide: true } }, async () => admin.swagger())
  {
    admin.post('/reload', {
      schema: {
        tags: ['admin'],
        summary: 'Reload config, keys and caller secrets (like SIGHUP); a bad config is refused and the running one keeps serving',
        response: {
          200: {
            description: 'The new config is in force.',
            type: 'object',
            required: ['status', 'tenants'],
            properties: { status: { type: 'string', enum: ['reloaded'] }, tenants: { type: 'array', items: { type: 'string' } } }
          },
          422: { description: 'Refused: every problem with its path; nothing changed.', $ref: 'Problem#' }
        }
      }
    }, async () => {
      if (deps.reload === undefined) {
        throw new BrokerError('BROKER_RELOAD_REFUSED', 'this broker was started without a config file (demo or embedded), so there is nothing to reload')
      }
      try {
        await deps.reload()
      } catch (error) {
        if (error instanceof ConfigError) {
          throw new BrokerError('BROKER_RELOAD_REFUSED', `the new configuration was refused; the running one keeps serving: ${error.issues.join('; ')}`, { cause: error })
        }
        throw error
      }
      deps.logger.info({ tenants: [...deps.tenants.keys()] }, 'config reloaded')
      return { status: 'reloaded', tenants: [...deps.tenants.keys()] }
    })
  }
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
      recorder.flushCounts()
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

function readiness (deps: BrokerDependencies): readonly ReadinessCheck[] {
  const metadata = deps.discovery.current()
  if (metadata === undefined) deps.discovery.get().catch(() => {}) // try again; the next probe sees the result
  const keyExpiry = deps.keyExpiry.isStarted()
    ? [{ name: 'keyExpiry', ...keyExpiryReadiness(deps.keyExpiry.snapshot(), deps.keyExpiry.warnDays) }]
    : []
  return [
    ...(deps.lifecycle.isDraining ? [{ name: 'draining', isReady: false, detail: 'the broker is shutting down and finishing in-flight requests' }] : []),
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

async function drainAndClose (deps: BrokerDependencies, servers: BrokerServers, drainTimeoutMs: number): Promise<void> {
  deps.lifecycle.isDraining = true
  deps.logger.info({ drainTimeoutMs }, 'draining')
  // The proxy first: it stops accepting, answers new requests on open connections 503 and lets
  // in-flight ones finish; past the bound, the remaining connections are cut.
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>(resolve => { timer = setTimeout(() => { resolve('timeout') }, drainTimeoutMs) })
  const outcome = await Promise.race([servers.proxy.close().then(() => 'drained' as const), deadline])
  clearTimeout(timer)
  if (outcome === 'timeout') {
    deps.logger.warn({ drainTimeoutMs }, 'drain timed out; closing remaining connections')
    servers.proxy.closeAllConnections()
    await servers.proxy.close()
  }
  await servers.admin.close()
  await deps.close()
}

/** A running broker. */
export interface RunningBroker {
  readonly deps: BrokerDependencies
  readonly servers: BrokerServers
  readonly proxyUrl: string
  readonly adminUrl: string
  /** Drains: readiness false, no new requests, in-flight ones finish (up to drainTimeoutMs), then closes. */
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
  const listen = options.listen ?? config.listen
  let servers: BrokerServers | undefined
  let proxyUrl: string
  let adminUrl: string
  try {
    servers = await buildServers(deps)
    proxyUrl = await servers.proxy.listen(listen.proxy)
    adminUrl = await servers.admin.listen({ host: listen.admin.host, port: listen.admin.port })
  } catch (error) {
    // A failed start leaves no listener, connection pool or audit file open; the start's own error is what the caller gets.
    const closed = await Promise.allSettled([servers?.proxy.close(), servers?.admin.close(), deps.close()])
    for (const result of closed) {
      if (result.status === 'rejected') logger.warn({ err: result.reason }, 'closing after a failed start failed')
    }
    throw error
  }
  // Never blocks or fails start-up: the first round runs in the background; failures are logged and shown in /status and /readyz.
  if (options.checkKeyExpiry !== false) deps.keyExpiry.start()
  // A pending key left by an interrupted rotation is proven and promoted, or discarded, in the background.
  deps.keyRotation.start()
  let closing: Promise<void> | undefined
  return {
    deps,
    servers,
    proxyUrl,
    adminUrl,
    close: async () => {
      closing ??= drainAndClose(deps, servers, options.drainTimeoutMs ?? 25_000)
      await closing
    }
  }
}
