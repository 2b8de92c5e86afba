// This server's clock against HelseID's, from the Date header of the discovery response: client assertions live 10 s.

import type { StepStatus } from './doctor-report.ts'

export const clockSkewWarnMs = 2_000
export const clockSkewFailMs = 30_000

export interface ClockSkewVerdict {
  readonly status: StepStatus
  readonly detail: string
  readonly ask?: string
}

/**
 * Compares HelseID's `Date` header with the local clock halfway between sending and the answer. `Date` has
 * whole seconds, so the server's time is taken as the middle of that second.
 */
export function judgeClockSkew (date: string | undefined, sentAtMs: number, answeredAtMs: number): ClockSkewVerdict {
  const serverMs = date === undefined ? Number.NaN : Date.parse(date)
  if (Number.isNaN(serverMs)) return { status: 'WARN', detail: 'HelseID sent no usable Date header; the clock could not be compared' }
  const skewMs = (sentAtMs + answeredAtMs) / 2 - (serverMs + 500)
  const size = Math.abs(skewMs)
  const text = `this server's clock is ${(size / 1000).toFixed(1)} s ${skewMs >= 0 ? 'ahead of' : 'behind'} HelseID`
  if (size > clockSkewFailMs) {
    return {
      status: 'FAIL',
      detail: `${text}; client assertions live 10 s, so HelseID will refuse them: fix time synchronisation (NTP / w32time)`,
      ask: `Ask IT to fix time synchronisation (NTP) on this server: its clock is ${(size / 1000).toFixed(0)} s off`
    }
  }
  if (size > clockSkewWarnMs) return { status: 'WARN', detail: `${text} (more than ${clockSkewWarnMs / 1000} s; client assertions live 10 s): check time synchronisation` }
  return { status: 'OK', detail: `${text} (within ${clockSkewWarnMs / 1000} s)` }
}
