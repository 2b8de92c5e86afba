// `hash-secret`: makes the secretHash for a caller, from a new random secret (--generate) or one read from stdin.

import { exitCodes } from '../errors.ts'
import { generateSecret, hashSecret, minSecretLength } from '../security/secret-hash.ts'

/** Where hash-secret reads and writes; injected so tests can feed stdin. */
export interface HashSecretIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  /** The text on stdin up to the first line break (or all of it), undefined when stdin is empty. */
  readonly readLine: () => Promise<string | undefined>
}

/**
 * With `generate`, prints `secret: ...` and `secretHash: ...`; otherwise reads one line from stdin and prints
 * `secretHash: ...`. Exit 0, or 64 when stdin holds no usable secret (the secret itself is never echoed in a message).
 */
export async function runHashSecret (options: { readonly generate: boolean }, io: HashSecretIo): Promise<number> {
  if (options.generate) {
    const secret = generateSecret()
    io.out(`secret: ${secret}`)
    io.out(`secretHash: ${await hashSecret(secret)}`)
    return exitCodes.ok
  }
  const line = await io.readLine()
  const secret = line?.replace(/^\uFEFF/, '').replace(/\r$/, '')
  const problem = secretProblem(secret)
  if (problem !== undefined || secret === undefined) {
    io.err(`hash-secret: ${problem ?? 'no secret'}; or run helseid-broker hash-secret --generate for a new random one`)
    return exitCodes.usage
  }
  io.out(`secretHash: ${await hashSecret(secret)}`)
  return exitCodes.ok
}

function secretProblem (secret: string | undefined): string | undefined {
  if (secret === undefined || secret === '') return 'no secret on stdin; give it as one line (e.g. from a file: helseid-broker hash-secret < epj.secret)'
  if (/[\u0000-\u001f\u007f]/.test(secret)) return 'the secret holds a control character; it must be printable text'
  if (secret.trim() !== secret) return 'the secret starts or ends with a space; remove it'
  if ([...secret].length < minSecretLength) return `the secret is too short (under ${minSecretLength} characters)`
  return undefined
}

/** Reads `stream` up to the first line break, then stops reading; undefined when it ends without any text. */
export async function readFirstLine (stream: NodeJS.ReadableStream): Promise<string | undefined> {
  let text = ''
  stream.setEncoding('utf8')
  for await (const chunk of stream) {
    text += String(chunk)
    const newline = text.indexOf('\n')
    if (newline !== -1) return text.slice(0, newline)
  }
  return text === '' ? undefined : text
}
