// Parsing the Selvbetjening client-secret answers (pure): the key list, the registration result and problem details.

import { BrokerError } from '../errors.ts'
import type { ClientKey } from '../keys/client-key.ts'

/** One registered key of a client, as `GET /v1/client-secret` lists it (helseid-protocol.md §6.1). */
export interface ClientSecret {
  readonly kid: string | null
  readonly jwkThumbprint: string | null
  /** ISO 8601 as sent. */
  readonly expiration: string
  readonly expiresAtMs: number
  /** 'Api' or 'Gui' (how the key was registered), when sent. */
  readonly origin: string | null
}

/** What `POST /v1/client-secret` answers: when the newly registered key expires. */
export interface RegisteredClientSecret {
  readonly expiration: string
  readonly expiresAtMs: number
}

/** RFC 9457 problem details from Selvbetjening, the safe string members only. */
export interface SelvbetjeningProblem {
  readonly type?: string
  readonly title?: string
  readonly detail?: string
}

/** A failed Selvbetjening call: code BROKER_SELVBETJENING_FAILED, with the HTTP status and problem when the API answered. */
export class SelvbetjeningError extends BrokerError {
  /** The API's HTTP status; undefined when it could not be reached or the answer was unusable at 2xx. */
  readonly httpStatus: number | undefined
  readonly problem: SelvbetjeningProblem | undefined
  constructor (message: string, options: ErrorOptions & { httpStatus?: number, problem?: SelvbetjeningProblem } = {}) {
    super('BROKER_SELVBETJENING_FAILED', message, { ...(options.cause === undefined ? {} : { cause: options.cause }) })
    this.name = 'SelvbetjeningError'
    this.httpStatus = options.httpStatus
    this.problem = options.problem
  }
}

// ISO 8601 date-time with seconds and an explicit offset, as the Java client's ZonedDateTime.parse needs.
const isoDateTimePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

/** Parses the `GET /v1/client-secret` body: a JSON array of entries. @throws SelvbetjeningError when it is anything else. */
export function parseClientSecretList (text: string): readonly ClientSecret[] {
  const value = parseJson(text)
  if (!Array.isArray(value)) throw new SelvbetjeningError('Selvbetjening listed the client secrets as something other than a JSON array')
  return value.map((item: unknown, index) => {
    if (!isRecord(item)) throw new SelvbetjeningError(`Selvbetjening client secret [${index}] is not an object`)
    const expiresAtMs = readExpiration(item.expiration, `client secret [${index}]`)
    return {
      kid: optionalString(item.kid, `client secret [${index}].kid`),
      jwkThumbprint: optionalString(item.jwkThumbprint, `client secret [${index}].jwkThumbprint`),
      expiration: String(item.expiration),
      expiresAtMs,
      origin: optionalString(item.origin, `client secret [${index}].origin`)
    }
  })
}

/** Parses the `POST /v1/client-secret` success body `{"expiration": "..."}`. @throws SelvbetjeningError otherwise. */
export function parseRegisteredClientSecret (text: string): RegisteredClientSecret {
  const value = parseJson(text)
  if (!isRecord(value)) throw new SelvbetjeningError('Selvbetjening answered the key registration with something other than a JSON object')
  return { expiration: String(value.expiration), expiresAtMs: readExpiration(value.expiration, 'the key registration answer') }
}

/** The problem details in an error body, if it holds any; never throws. */
export function parseProblem (text: string): SelvbetjeningProblem | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isRecord(value)) return undefined
  const problem: { type?: string, title?: string, detail?: string } = {}
  for (const member of ['type', 'title', 'detail'] as const) {
    const text = value[member]
    // Kept short and printable: these go into messages and logs.
    if (typeof text === 'string' && text !== '') problem[member] = text.replace(/[^\x20-\x7E\u00A0-\u024F]/g, '?').slice(0, 200)
  }
  return Object.keys(problem).length === 0 ? undefined : problem
}

/** The entry for a local key: by kid, else by RFC 7638 thumbprint (keys registered in the web UI may carry another kid). */
export function findClientSecret (secrets: readonly ClientSecret[], key: Pick<ClientKey, 'kid' | 'thumbprint'>): ClientSecret | undefined {
  return secrets.find(secret => secret.kid === key.kid) ?? secrets.find(secret => secret.jwkThumbprint === key.thumbprint)
}

function readExpiration (value: unknown, what: string): number {
  const expiresAtMs = typeof value === 'string' && isoDateTimePattern.test(value) ? Date.parse(value) : Number.NaN
  if (Number.isNaN(expiresAtMs)) throw new SelvbetjeningError(`Selvbetjening sent ${what} without an ISO 8601 expiration with offset`)
  return expiresAtMs
}

function optionalString (value: unknown, what: string): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw new SelvbetjeningError(`Selvbetjening sent ${what} as ${typeof value}, expected a string`)
  return value
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new SelvbetjeningError('Selvbetjening answered with something other than JSON', { cause: error })
  }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
