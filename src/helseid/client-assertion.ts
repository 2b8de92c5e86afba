// The private_key_jwt client assertion exactly as HelseID requires it (helseid-protocol.md §2.3, §4.2).

import { randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import type { OrganizationConfig } from '../config/config.ts'
import type { ClientKey } from '../keys/client-key.ts'

/** Assertion lifetime: NHN's own libraries use 10 s; HelseID allows at most 60 s. */
export const assertionLifetimeSeconds = 10

/** Input for one client assertion. */
export interface ClientAssertionInput {
  readonly clientId: string
  /** The issuer string exactly as discovery gives it: HelseID's required `aud`. */
  readonly issuer: string
  readonly key: ClientKey
  readonly organization: OrganizationConfig
  readonly nowMs: number
}

/** Signs a fresh single-use client assertion (new jti every call, including nonce retries). */
export async function createClientAssertion (input: ClientAssertionInput): Promise<string> {
  const iat = Math.floor(input.nowMs / 1000)
  const details = toAssertionDetails(input.organization)
  return await new SignJWT(details === undefined ? {} : { assertion_details: details })
    .setProtectedHeader({ alg: input.key.alg, kid: input.key.kid, typ: 'client-authentication+jwt' })
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.issuer)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + assertionLifetimeSeconds)
    .setJti(randomBytes(16).toString('hex'))
    .sign(input.key.privateKey)
}

/**
 * The `assertion_details` claim for organisation numbers: multi-tenant `NO:ORGNR:parent[:child]`
 * when a parent is given, the single-tenant child form when only a child is; none otherwise.
 */
export function toAssertionDetails (organization: OrganizationConfig): Record<string, unknown> | undefined {
  if (organization.parent !== undefined) {
    const value = organization.child === undefined
      ? `NO:ORGNR:${organization.parent}`
      : `NO:ORGNR:${organization.parent}:${organization.child}`
    return helseIdAuthorization('urn:oid:1.0.6523', value)
  }
  if (organization.child !== undefined) {
    return helseIdAuthorization('urn:oid:2.16.578.1.12.4.1.4.101', organization.child)
  }
  return undefined
}

function helseIdAuthorization (system: string, value: string): Record<string, unknown> {
  return {
    type: 'helseid_authorization',
    practitioner_role: { organization: { identifier: { system, type: 'ENH', value } } }
  }
}
