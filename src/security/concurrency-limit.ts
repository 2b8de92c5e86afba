// A cap on upstream calls in flight: past it, calls are refused at once rather than queued without bound.

/** Takes a slot (false when none is free); `release` gives it back. */
export interface ConcurrencyLimit {
  readonly tryAcquire: () => boolean
  readonly release: () => void
  readonly inFlight: () => number
}

/** Creates a limit of `max` concurrent holders. */
export function createConcurrencyLimit (max: number): ConcurrencyLimit {
  let inFlight = 0
  return {
    tryAcquire () {
      if (inFlight >= max) return false
      inFlight++
      return true
    },
    release () { inFlight = Math.max(0, inFlight - 1) },
    inFlight: () => inFlight
  }
}
