// Outbound connections: direct, or through one HTTP proxy (egress.proxy, else HTTPS_PROXY/HTTP_PROXY), honouring NO_PROXY.

import { rootCertificates } from 'node:tls'
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici'

/** The proxy variables the broker reads, once, at start-up. */
export interface ProxyEnvironment {
  readonly HTTPS_PROXY?: string | undefined
  readonly https_proxy?: string | undefined
  readonly HTTP_PROXY?: string | undefined
  readonly http_proxy?: string | undefined
  readonly NO_PROXY?: string | undefined
  readonly no_proxy?: string | undefined
}

/** The proxy outbound calls go through, and the hosts that skip it (undici's NO_PROXY syntax). */
export interface EgressRoute {
  readonly proxyUrl: string
  /** Where the proxy came from: `egress.proxy` or the environment variable's name. */
  readonly source: string
  /** Comma-separated NO_PROXY entries, loopback names included for a proxy from the environment. */
  readonly noProxy: string
}

const proxyVariables = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const

/** The proxy in effect, or undefined when every call goes direct (no proxy, or NO_PROXY=*). */
export function resolveEgressRoute (egressProxy: string | undefined, env: ProxyEnvironment): EgressRoute | undefined {
  const variable = proxyVariables.find(name => env[name] !== undefined)
  const fromEnvironment = variable === undefined ? undefined : env[variable]
  const proxyUrl = egressProxy ?? (fromEnvironment === '' ? undefined : fromEnvironment)
  const noProxyValue = env.NO_PROXY ?? env.no_proxy ?? ''
  if (proxyUrl === undefined || noProxyValue.trim() === '*') return undefined
  const noProxy = [noProxyValue]
  if (egressProxy === undefined) noProxy.push('localhost', '127.0.0.1', '[::1]')
  return {
    proxyUrl,
    source: egressProxy === undefined ? variable ?? 'environment' : 'egress.proxy',
    noProxy: noProxy.filter(entry => entry !== '').join(',')
  }
}

/**
 * Creates a keep-alive dispatcher. An explicit `egressProxy` carries every call not excluded by
 * NO_PROXY; a proxy from the environment never carries loopback calls. `extraCa` (PEM) is trusted
 * besides Node's bundled roots, for the proxy and for the targets behind it.
 */
export function createEgressDispatcher (egressProxy: string | undefined, env: ProxyEnvironment, options: Agent.Options, extraCa: readonly string[] = []): Dispatcher {
  // tls `ca` replaces the default roots, so they are listed too.
  const tls = extraCa.length === 0 ? undefined : { ca: [...rootCertificates, ...extraCa] }
  const agentOptions = tls === undefined || typeof options.connect === 'function' ? options : { ...options, connect: { ...options.connect, ...tls } }
  const route = resolveEgressRoute(egressProxy, env)
  if (route === undefined) return new Agent(agentOptions)
  return new EnvHttpProxyAgent({
    ...agentOptions,
    ...(tls === undefined ? {} : { requestTls: tls, proxyTls: tls }),
    httpProxy: route.proxyUrl,
    httpsProxy: route.proxyUrl,
    noProxy: route.noProxy
  })
}
