// Extra CA certificates for outbound TLS (egress.caFile): a PEM bundle, e.g. the CA of a TLS-inspecting proxy.

import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../errors.ts'

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * Reads every certificate in a PEM file; `file` is absolute (the config resolved it).
 * @throws ConfigError naming `egress.caFile` when the file cannot be read or holds no valid certificate
 */
export async function loadCaCertificates (file: string): Promise<readonly string[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'unreadable'
    throw new ConfigError([`egress.caFile: cannot read ${file}: ${code}`])
  }
  const blocks = text.match(pemBlock) ?? []
  if (blocks.length === 0) throw new ConfigError([`egress.caFile: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`])
  const invalid = blocks.flatMap((block, index) => {
    try {
      new X509Certificate(block) // parsing is the check
      return []
    } catch {
      return [`egress.caFile: certificate ${index + 1} in ${file} is not a valid X.509 certificate`]
    }
  })
  if (invalid.length > 0) throw new ConfigError(invalid)
  return blocks
}
