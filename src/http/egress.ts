// Outbound connections: direct, or through one HTTP proxy (egress.proxy, else HTTPS_PROXY/HTTP_PROXY), honouring NO_PROXY.

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

/**
 * Creates a keep-alive dispatcher. An explicit `egressProxy` carries every call not excluded by
 * NO_PROXY; a proxy from the environment never carries loopback calls.
 */
export function createEgressDispatcher (egressProxy: string | undefined, env: ProxyEnvironment, options: Agent.Options): Dispatcher {
  const fromEnvironment = env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy
  const proxyUrl = egressProxy ?? (fromEnvironment === '' ? undefined : fromEnvironment)
  if (proxyUrl === undefined) return new Agent(options)
  const noProxy = [env.NO_PROXY ?? env.no_proxy ?? '']
  if (egressProxy === undefined) noProxy.push('localhost', '127.0.0.1', '[::1]')
  return new EnvHttpProxyAgent({
    ...options,
    httpProxy: proxyUrl,
    httpsProxy: proxyUrl,
    noProxy: noProxy.filter(entry => entry !== '').join(',')
  })
}
