// Downloads the import cannot use: each refusal names the file and the problem, never the file's contents, and a
// wrong ZipCrypto password that slips past the one-byte check is still reported as a wrong password, not as damage.

import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DownloadError, maxDownloadBytes, readDownload, type PasswordSource } from '../../src/onboarding/read-download.ts'
import { makeZip } from '../fixtures/zip-files.ts'

const password = 'Sms-2468-Kode'
const clientJson = JSON.stringify({ clientId: 'c-1', privateJwk: '{"kty":"RSA","d":"SECRET-D-VALUE"}', filler: 'x'.repeat(4000) })

const noPassword: PasswordSource = async () => undefined

async function refusal (file: string, source: PasswordSource = noPassword): Promise<DownloadError> {
  const error = await readDownload(file, source).then(() => undefined, (error: unknown) => error)
  if (!(error instanceof DownloadError)) throw new Error(`expected a DownloadError, got ${String(error)}`)
  return error
}

/** Offsets in a one-entry zip: the local header's compression method, the entry's data, the central header's method. */
function zipLayout (zip: Uint8Array): { localMethod: number, dataStart: number, centralMethod: number } {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength)
  const dataStart = 30 + view.getUint16(26, true) + view.getUint16(28, true)
  let central = -1
  for (let offset = zip.length - 22; offset >= 0; offset--) {
    if (view.getUint32(offset, true) === 0x06054b50) { central = view.getUint32(offset + 16, true); break }
  }
  if (central < 0 || view.getUint32(central, true) !== 0x02014b50) throw new Error('no central directory found')
  return { localMethod: 8, dataStart, centralMethod: central + 10 }
}

t.test('a JSON file that is not valid JSON: not-a-download, without quoting the text', async t => {
  const dir = t.testdir({ 'HelseId.json': '{"clientId": "c-1", "privateJwk": "SECRET-D-VALUE' })
  const error = await refusal(join(dir, 'HelseId.json'))
  t.equal(error.problem, 'not-a-download')
  t.equal(error.message, `${join(dir, 'HelseId.json')}: not valid JSON; expected the zip downloaded from HelseID Selvbetjening or the JSON file extracted from it`)
  t.notMatch(error.message, 'SECRET')
})

t.test('a file that is not UTF-8 text is named as such', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'HelseId.json')
  await writeFile(file, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))
  const error = await refusal(file)
  t.equal(error.problem, 'not-a-download')
  t.match(error.message, `${file}: not UTF-8 text;`)
})

t.test('a file larger than any download is refused before it is read', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'huge.json')
  await writeFile(file, Buffer.alloc(maxDownloadBytes + 1, 0x20))
  const error = await refusal(file)
  t.equal(error.problem, 'not-a-download')
  t.equal(error.message, `${file}: ${maxDownloadBytes + 1} bytes is far too large for a Selvbetjening download (at most ${maxDownloadBytes})`)
})

t.test('an unencrypted zip whose entry is damaged: not-zip, naming the entry and asking for a new download', async t => {
  const dir = t.testdir({})
  const zip = await makeZip({ 'HelseId.json': clientJson }, 'none')
  const { dataStart } = zipLayout(zip)
  for (let offset = dataStart + 2; offset < dataStart + 12; offset++) zip[offset] = (zip[offset] ?? 0) ^ 0x5a
  const file = join(dir, 'download.zip')
  await writeFile(file, zip)
  const error = await refusal(file)
  t.equal(error.problem, 'not-zip')
  t.match(error.message, `${file}: not a valid zip file: HelseId.json cannot be extracted (`)
  t.match(error.message, /download it again from Selvbetjening$/)
})

t.test('a compression method the broker cannot read: unsupported-zip, with the 7-Zip advice', async t => {
  const dir = t.testdir({})
  const zip = await makeZip({ 'HelseId.json': clientJson }, 'none')
  const { localMethod, centralMethod } = zipLayout(zip)
  // 14 is LZMA, which 7-Zip can write and zip.js cannot read.
  for (const offset of [localMethod, centralMethod]) { zip[offset] = 14; zip[offset + 1] = 0 }
  const file = join(dir, 'download.zip')
  await writeFile(file, zip)
  const error = await refusal(file)
  t.equal(error.problem, 'unsupported-zip')
  t.match(error.message, `${file}: the zip uses a format the broker cannot read (`)
  t.match(error.message, /extract the JSON file with 7-Zip and import that file instead$/)
})

t.test('ZipCrypto: a wrong password that passes the one-byte check is a wrong password (maybe damage), and the next one is asked', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'download.zip')
  await writeFile(file, await makeZip({ 'HelseId.json': clientJson }, 'zipcrypto', password))
  // About one wrong password in 256 passes ZipCrypto's check byte and fails only later, in inflate or the CRC.
  let slipped: DownloadError | undefined
  let candidate = ''
  const otherProblems: string[] = []
  for (let n = 0; n < 5000 && slipped === undefined; n++) {
    candidate = `feil-${n}`
    const guess = candidate
    const error = await refusal(file, async attempt => attempt === 1 ? guess : undefined)
    if (error.problem !== 'wrong-password') otherProblems.push(`${guess}: ${error.problem}`)
    if (error.message.includes('(or the zip is damaged')) slipped = error
  }
  if (slipped === undefined) throw new Error('no password passed the check byte in 5000 tries')
  t.same(otherProblems, [], 'a wrong password is never reported as a damaged or unreadable zip')
  t.equal(slipped.problem, 'wrong-password')
  t.equal(slipped.message, `${file}: wrong zip password (or the zip is damaged: then download it again); it is the one sent by SMS when the client configuration was downloaded`)

  const asked: number[] = []
  const download = await readDownload(file, async attempt => { asked.push(attempt); return attempt === 1 ? candidate : password })
  t.same(asked, [1, 2], 'after the slipped password, the next one is asked for')
  t.equal(download.encryption, 'ZipCrypto')
  t.equal(new TextDecoder().decode(download.bytes), clientJson)
})
