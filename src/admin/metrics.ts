// The broker's Prometheus metrics, in a registry of its own (one per broker instance).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Counters and histograms the services update; read by GET /metrics. */
export interface BrokerMetrics {
  readonly registry: Registry
  readonly requests: Counter<'tenant' | 'api' | 'method' | 'status'>
  readonly upstreamDuration: Histogram<'api' | 'status'>
  readonly tokenFetches: Counter<'tenant' | 'api' | 'outcome'>
  readonly tokenCache: Counter<'result'>
  readonly tokenExpiry: Gauge<'tenant' | 'api'>
  readonly keyExpiry: Gauge<'tenant' | 'kid'>
}

/** Creates a fresh registry with the broker's metrics and Node's default process metrics. */
export function createMetrics (options: { readonly withDefaults?: boolean } = {}): BrokerMetrics {
  const registry = new Registry()
  if (options.withDefaults !== false) collectDefaultMetrics({ register: registry, prefix: 'helseid_broker_' })
  return {
    registry,
    requests: new Counter({
      name: 'helseid_broker_requests_total',
      help: 'Proxied requests by tenant, API, method and response status (broker or upstream).',
      labelNames: ['tenant', 'api', 'method', 'status'],
      registers: [registry]
    }),
    upstreamDuration: new Histogram({
      name: 'helseid_broker_upstream_duration_seconds',
      help: 'Time from sending the upstream request to its response headers.',
      labelNames: ['api', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry]
    }),
    tokenFetches: new Counter({
      name: 'helseid_broker_token_fetches_total',
      help: 'Token requests to HelseID by outcome (issued, rejected, unreachable, bad_response).',
      labelNames: ['tenant', 'api', 'outcome'],
      registers: [registry]
    }),
    tokenCache: new Counter({
      name: 'helseid_broker_token_cache_total',
      help: 'Token cache lookups: hit, miss (started a fetch), coalesced (joined a fetch), refresh_ahead (hit that started a background refresh).',
      labelNames: ['result'],
      registers: [registry]
    }),
    tokenExpiry: new Gauge({
      name: 'helseid_broker_token_expiry_seconds',
      help: 'Seconds until the cached access token for a tenant and API expires.',
      labelNames: ['tenant', 'api'],
      registers: [registry]
    }),
    keyExpiry: new Gauge({
      name: 'helseid_broker_key_expiry_seconds',
      help: 'Seconds until the tenant\'s HelseID client key expires, as the Selvbetjening API last said (negative once expired).',
      labelNames: ['tenant', 'kid'],
      registers: [registry]
    })
  }
}
