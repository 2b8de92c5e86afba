// Proving a client key: HelseID must issue a token for a client assertion signed with it; and whether Selvbetjening lists it.

import { BrokerError, IdpRejectedError } from '../errors.ts'
import { createDpopKey } from '../helseid/dpop-key.ts'
import type { ClientKey } from '../keys/client-key.ts'
import type { TokenService } from '../tokens/token-service.ts'
import { findClientSecret } from './client-secrets.ts'
import { KeyRotationError, type RotationTarget } from './rotation-target.ts'
import { selvbetjeningApiName, selvbetjeningTokenRequest, type SelvbetjeningCaller, type SelvbetjeningClient } from './selvbetjening-client.ts'

/** What proving needs. */
export interface KeyProofOptions {
  readonly tokens: TokenService
  readonly selvbetjening: SelvbetjeningClient
  /** Waits between attempts to prove a just-registered key; default 2, 5, 15, 30 s. */
  readonly verifyDelaysMs?: readonly number[]
}

/** Accepted, or why not: `isRejected` when HelseID answered invalid_client (it does not know the key). */
export type Verdict = { readonly isAccepted: true } | { readonly isAccepted: false, readonly isRejected: boolean, readonly reason: string }

/** Asks HelseID for a Selvbetjening-scoped token with `key`; a fresh DPoP key each time, so no cached refusal answers for HelseID. */
export async function proveKey (target: RotationTarget, key: ClientKey, options: KeyProofOptions): Promise<Verdict> {
  const caller: SelvbetjeningCaller = { ...target.caller, key, dpopKey: await createDpopKey() }
  try {
    await options.tokens.getToken({ tenant: caller.tenant, api: selvbetjeningApiName }, selvbetjeningTokenRequest(caller))
    return { isAccepted: true }
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error
    return { isAccepted: false, isRejected: error instanceof IdpRejectedError && error.oauthError === 'invalid_client', reason: `${error.code}: ${error.message}` }
  }
}

/** Proves a key just registered, retrying while HelseID refuses it or cannot be reached. @throws KeyRotationError when it never accepts it */
export async function proveRegisteredKey (target: RotationTarget, key: ClientKey, options: KeyProofOptions, pendingFile: string): Promise<void> {
  let verdict = await proveKey(target, key, options)
  for (const delayMs of options.verifyDelaysMs ?? [2_000, 5_000, 15_000, 30_000]) {
    if (verdict.isAccepted) return
    await new Promise(resolve => setTimeout(resolve, delayMs))
    verdict = await proveKey(target, key, options)
  }
  if (!verdict.isAccepted) {
    throw new KeyRotationError(`Selvbetjening registered the new key, but HelseID did not accept it (${verdict.reason}); the working key is unchanged, and the pending key ${pendingFile} is promoted once HelseID accepts it (next rotation or broker start)`)
  }
}

/** Whether Selvbetjening (asked with the working key) lists `key`, or the reason it could not be asked. */
export async function registrationOf (target: RotationTarget, key: ClientKey, options: KeyProofOptions): Promise<{ readonly isListed: boolean } | { readonly unknown: string }> {
  try {
    return { isListed: findClientSecret(await options.selvbetjening.listClientSecrets(target.caller), key) !== undefined }
  } catch (error) {
    if (error instanceof BrokerError) return { unknown: `${error.code}: ${error.message}` }
    throw error
  }
}
