// The tenant's HelseID client key: loaded from a Selvbetjening download or a private JWK file.

import type { JWK } from 'jose'

export type ClientKeyAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512'

/** A usable private key for client assertions, with what `/status` and `keys status` may show of it. */
export interface ClientKey {
  /** Absolute path of the file it came from. */
  readonly file: string
  /** Client id, when the file names one (Selvbetjening downloads do; plain JWK files do not). */
  readonly clientId?: string
  /** Authority named in the file, normalised (no trailing slash, no `/connect/token`). */
  readonly authority?: string
  /** Key id: the file's `kid`, else the RFC 7638 thumbprint. */
  readonly kid: string
  readonly alg: ClientKeyAlgorithm
  readonly kty: 'RSA' | 'EC'
  /** RSA modulus length in bits, or the EC curve's size. */
  readonly sizeBits: number
  readonly crv?: 'P-256' | 'P-384' | 'P-521'
  /** The private key, for jose's SignJWT. */
  readonly privateKey: CryptoKey
  /** The public JWK (kty, n/e or crv/x/y, kid, alg, use). */
  readonly publicJwk: JWK
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  readonly thumbprint: string
}
