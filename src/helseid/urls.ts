// URL rules shared by config and protocol code: https everywhere, http only on loopback.

/** True for a host name that can only mean this machine. */
export function isLoopbackHost (hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

/** True for https URLs, and http URLs whose host is loopback. */
export function isAllowedUrl (value: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  if (url.protocol === 'https:') return true
  return url.protocol === 'http:' && isLoopbackHost(url.hostname)
}
