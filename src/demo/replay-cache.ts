// Remembers single-use identifiers (jti) until they can no longer pass a time check, so replays are caught.

/** A bounded memory of identifiers that have been used. */
export interface ReplayCache {
  /** True when `id` was used and has not yet expired at `nowMs`. */
  readonly isKnown: (id: string, nowMs: number) => boolean
  /** Marks `id` as used until `expiresAtMs`; returns false (and changes nothing) when it was already in use. */
  readonly remember: (id: string, expiresAtMs: number, nowMs: number) => boolean
}

const pruneThreshold = 10_000

/** Creates an empty replay cache; entries are dropped only after their expiry has passed. */
export function createReplayCache (): ReplayCache {
  const expiresAtMsById = new Map<string, number>()

  const isKnown = (id: string, nowMs: number): boolean => {
    const expiresAtMs = expiresAtMsById.get(id)
    return expiresAtMs !== undefined && expiresAtMs >= nowMs
  }

  return {
    isKnown,
    remember (id, expiresAtMs, nowMs) {
      if (isKnown(id, nowMs)) return false
      if (expiresAtMsById.size >= pruneThreshold) {
        for (const [knownId, knownExpiresAtMs] of expiresAtMsById) {
          if (knownExpiresAtMs < nowMs) expiresAtMsById.delete(knownId)
        }
      }
      expiresAtMsById.set(id, expiresAtMs)
      return true
    }
  }
}
