// Time as an injected dependency, so that tests can move it.

/** A source of wall-clock time in milliseconds since the epoch. */
export interface Clock {
  readonly nowMs: () => number
}

/** The real clock. */
export const systemClock: Clock = { nowMs: () => Date.now() }

/** A clock that only moves when told to; for tests and simulations. */
export interface ManualClock extends Clock {
  readonly advanceMs: (ms: number) => void
}

/** Creates a manual clock starting at `startMs` (defaults to now). */
export function createManualClock (startMs: number = Date.now()): ManualClock {
  let now = startMs
  return { nowMs: () => now, advanceMs: (ms: number) => { now += ms } }
}
