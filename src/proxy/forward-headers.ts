// Header hygiene in both directions: what the caller must not pass upstream, and hop-by-hop on the way back.

/** Headers that describe one connection, never the message (RFC 9110 §7.6.1), plus proxy-connection. */
const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade'
])

/** Caller headers the broker replaces or must never pass on. */
const callerOnly = new Set(['authorization', 'dpop', 'cookie', 'host', 'content-length', 'expect', 'http2-settings'])

export type HeaderValue = string | string[] | undefined

/**
 * Copies the caller's headers minus hop-by-hop headers, headers named in `Connection`, and the
 * caller's credentials; names come out lower-case.
 */
export function toUpstreamHeaders (incoming: Readonly<Record<string, HeaderValue>>): Record<string, string | string[]> {
  // Drop Connection-listed headers first so callers cannot use Connection to remove ours.
  const listed = connectionListed(incoming.connection)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(incoming)) {
    const lower = name.toLowerCase()
    if (value === undefined || hopByHop.has(lower) || callerOnly.has(lower) || listed.has(lower)) continue
    out[lower] = value
  }
  return out
}

/** Copies upstream response headers minus hop-by-hop and Connection-listed ones. */
export function toCallerHeaders (incoming: Readonly<Record<string, HeaderValue>>): Record<string, string | string[]> {
  const listed = connectionListed(incoming.connection)
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(incoming)) {
    const lower = name.toLowerCase()
    if (value === undefined || hopByHop.has(lower) || listed.has(lower)) continue
    out[lower] = value
  }
  return out
}

const none: ReadonlySet<string> = new Set()
const keepAlive: ReadonlySet<string> = new Set(['keep-alive'])
const close: ReadonlySet<string> = new Set(['close'])

function connectionListed (value: HeaderValue): ReadonlySet<string> {
  // The values nearly every request carries, without building a set each time.
  if (value === undefined) return none
  if (value === 'keep-alive') return keepAlive
  if (value === 'close') return close
  const text = Array.isArray(value) ? value.join(',') : value
  return new Set(text.split(',').map(name => name.trim().toLowerCase()).filter(name => name !== ''))
}
