// Turning the caller's raw request target into tenant, API and an upstream path that cannot leave the API's base URL.

import { BrokerError } from '../errors.ts'

/** The parts of `/{tenant}/{api}/{path}?{query}`. */
export interface ProxyTarget {
  readonly tenant: string
  readonly api: string
  /** The path below the API's base URL, starting with '/', exactly as the caller sent it (still percent-encoded). */
  readonly path: string
  /** The raw query without '?', or '' when there is none. */
  readonly query: string
}

const namePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/
// RFC 3986 pchar plus '/', with '%' only as the start of a valid escape.
const pathPattern = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/
const queryPattern = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/

/**
 * Parses a raw request target (origin-form only). Refuses, with BROKER_PATH_REJECTED, anything that
 * an upstream could resolve outside the path given: dot segments in any encoding (also with path
 * parameters, `..;x`), encoded slashes and backslashes, empty segments, control characters and invalid
 * or non-UTF-8 escapes.
 * @throws BrokerError BROKER_NOT_FOUND when the target names no tenant and API.
 */
export function parseProxyTarget (rawTarget: string): ProxyTarget {
  if (!rawTarget.startsWith('/') || rawTarget.startsWith('//')) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request target must be a path starting with a single "/"')
  }
  const queryStart = rawTarget.indexOf('?')
  const rawPath = queryStart === -1 ? rawTarget : rawTarget.slice(0, queryStart)
  const query = queryStart === -1 ? '' : rawTarget.slice(queryStart + 1)
  if (rawPath.includes('#') || query.includes('#')) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request target must not contain a fragment')
  }
  if (!pathPattern.test(rawPath)) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains characters that are not allowed or an invalid percent-escape')
  }
  if (!queryPattern.test(query)) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the query contains characters that are not allowed or an invalid percent-escape')
  }
  const segments = rawPath.slice(1).split('/')
  const [tenant, api, ...rest] = segments
  if (tenant === undefined || tenant === '' || api === undefined || api === '') {
    throw new BrokerError('BROKER_NOT_FOUND', 'expected /{tenant}/{api}/{path}')
  }
  if (!namePattern.test(tenant) || !namePattern.test(api)) {
    throw new BrokerError('BROKER_NOT_FOUND', 'tenant and API names are lower-case letters, digits, "-" and "_"')
  }
  for (const [index, segment] of rest.entries()) {
    const isLast = index === rest.length - 1
    if (segment === '' && !isLast) {
      throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains an empty segment ("//")')
    }
    checkSegment(segment)
  }
  return { tenant, api, path: rest.length === 0 ? '/' : `/${rest.join('/')}`, query }
}

function checkSegment (segment: string): void {
  // Without an escape the pattern above has already excluded separators and control characters: only dot segments remain.
  if (!segment.includes('%')) {
    if (segment.startsWith('.') && isDotName(segment)) throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains a dot segment')
    return
  }
  let decoded: string
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    // Valid hex that is not UTF-8, e.g. the overlong '.' %c0%ae.
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains a percent-escape that is not UTF-8')
  }
  if (isDotName(decoded)) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains a dot segment')
  }
  if (/[/\\]/.test(decoded) || /%(?:2f|5c|25)/i.test(segment)) {
    // An upstream that decodes once more could turn these into separators or dot segments.
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains an encoded "/", "\\" or "%"')
  }
  if (/[\u0000-\u001f\u007f]/.test(decoded)) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path contains a control character')
  }
}

/** Servlet containers (Tomcat, Jetty) drop a segment's path parameters before resolving dot segments: `..;x` is `..`. */
function isDotName (segment: string): boolean {
  const name = segment.split(';', 1)[0]
  return name === '.' || name === '..'
}

/** Joins an API base URL (no trailing slash) and a checked path; verifies the result stays below the base. */
const parsedBases = new Map<string, URL>()
export function toUpstreamUrl (baseUrl: string, target: ProxyTarget): { readonly url: URL, readonly htu: string } {
  let base = parsedBases.get(baseUrl)
  if (base === undefined) { base = new URL(baseUrl); parsedBases.set(baseUrl, base) }
  const url = new URL(`${baseUrl}${target.path}${target.query === '' ? '' : `?${target.query}`}`)
  const basePath = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`
  if (url.origin !== base.origin || !(url.pathname === base.pathname || url.pathname.startsWith(basePath))) {
    throw new BrokerError('BROKER_PATH_REJECTED', 'the request path would leave the API base URL')
  }
  // RFC 9449 §4.2: htu is the target URI without query and fragment.
  return { url, htu: `${url.origin}${url.pathname}` }
}
