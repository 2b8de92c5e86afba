// A broker-held EC P-256 key that binds tokens (cnf.jkt) and signs a DPoP proof per call (RFC 9449).

import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, type JWK } from 'jose'

/** What a proof is made for. */
export interface DpopProofInput {
  /** HTTP method, upper case. */
  readonly htm: string
  /** Target URL without query and fragment (RFC 9449 §4.2). */
  readonly htu: string
  /** base64url(SHA-256(access token)); set on resource calls. */
  readonly ath?: string
  /** The server's last DPoP-Nonce, when it has sent one. */
  readonly nonce?: string
}

/** A DPoP signing key: one ES256 signature per proof. */
export interface DpopKey {
  /** RFC 7638 thumbprint of the public key: what HelseID puts in the token's cnf.jkt. */
  readonly jkt: string
  readonly publicJwk: Readonly<JWK>
  /** Signs on the calling thread. */
  readonly proof: (input: DpopProofInput, nowMs: number) => string
  /**
   * Signs on libuv's thread pool: the same proof, but the ~50 µs of the signature leave the event loop,
   * which is what limits a busy proxy (bench/RESULTS.md). For the per-call proofs of the proxy.
   */
  readonly signProof: (input: DpopProofInput, nowMs: number) => Promise<string>
}

/** Creates a fresh P-256 key held in memory only; tokens bound to it die with the process. */
export async function createDpopKey (): Promise<DpopKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const exported = publicKey.export({ format: 'jwk' })
  const publicJwk: JWK = { kty: 'EC', crv: 'P-256', x: String(exported.x), y: String(exported.y) }
  const jkt = await calculateJwkThumbprint(publicJwk, 'sha256')
  return { jkt, publicJwk, ...createProofSigners(privateKey, publicJwk) }
}

function createProofSigners (privateKey: KeyObject, publicJwk: JWK): Pick<DpopKey, 'proof' | 'signProof'> {
  // The header never changes: encode it once, not on every call.
  const encodedHeader = base64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk }))
  // RFC 7518 §3.4: ES256 signatures are the raw R||S pair, not DER.
  const signingKey = { key: privateKey, dsaEncoding: 'ieee-p1363' } as const
  const signingInput = (input: DpopProofInput, nowMs: number): string => {
    const claims: Record<string, string | number> = {
      jti: randomUUID(),
      htm: input.htm,
      htu: input.htu,
      iat: Math.floor(nowMs / 1000)
    }
    if (input.ath !== undefined) claims.ath = input.ath
    if (input.nonce !== undefined) claims.nonce = input.nonce
    return `${encodedHeader}.${base64url(JSON.stringify(claims))}`
  }
  return {
    proof (input, nowMs) {
      const data = signingInput(input, nowMs)
      return `${data}.${sign('sha256', Buffer.from(data), signingKey).toString('base64url')}`
    },
    async signProof (input, nowMs) {
      const data = signingInput(input, nowMs)
      return await new Promise((resolve, reject) => {
        // With a callback, node:crypto runs the signature as a job on libuv's thread pool.
        sign('sha256', Buffer.from(data), signingKey, (error, signature) => {
          if (error === null) resolve(`${data}.${signature.toString('base64url')}`)
          else reject(error)
        })
      })
    }
  }
}

/** base64url(SHA-256(token)): the `ath` claim binding a proof to one access token. */
export function accessTokenHash (accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url')
}

function base64url (text: string): string {
  return Buffer.from(text).toString('base64url')
}
