// The last DPoP nonce each server (authority or API, by origin) gave us.

/** Remembers one nonce per origin; servers may rotate them at any time. */
export interface NonceStore {
  readonly get: (origin: string) => string | undefined
  readonly set: (origin: string, nonce: string) => void
}

/** Creates a bounded in-memory nonce store. */
export function createNonceStore (maxOrigins = 256): NonceStore {
  const nonces = new Map<string, string>()
  return {
    get: origin => nonces.get(origin),
    set (origin, nonce) {
      if (!nonces.has(origin) && nonces.size >= maxOrigins) {
        const oldest = nonces.keys().next().value
        if (oldest !== undefined) nonces.delete(oldest)
      }
      nonces.set(origin, nonce)
    }
  }
}
