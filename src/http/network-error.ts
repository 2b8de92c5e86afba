// What went wrong on the wire, in one word a sysadmin can search for (ECONNREFUSED, ENOTFOUND, timeout…).

/** Walks an error's cause chain for a system or undici error code; 'timeout' for aborted-by-timeout. */
export function networkErrorCode (error: unknown): string {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { code, name, cause } = current as { code?: unknown, name?: unknown, cause?: unknown }
    if (name === 'TimeoutError') return 'timeout'
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{2,40}$/.test(code)) return code
    current = cause
  }
  return 'network error'
}
