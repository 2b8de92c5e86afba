// doctor's TLS verdicts over loopback, as a sysadmin reads them: a certificate for another name, an expired or not yet valid one,
// one the CA signed for the wrong purpose, one about to expire, and a connection reset on the ClientHello.

import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/parse-config.ts'
import { startFakeAuthority } from '../../src/demo/fake-authority.ts'
import { formatDoctorReport, type DoctorRow } from '../../src/doctor/doctor-report.ts'
import { runDoctor } from '../../src/doctor/run-doctor.ts'
import { startHttpsServer } from './loopback-endpoints.ts'

const caName = 'CN=tls-verdicts test CA, O=Throwaway test CA'

interface Leaf {
  readonly certPem: string
  readonly keyPem: string
}

interface VerdictPki {
  readonly caPem: string
  /** Signed by the CA, valid, but for api.elsewhere.example only. */
  readonly wrongName: Leaf
  /** For localhost, valid January 2020 only. */
  readonly expired: Leaf
  /** For localhost, valid from 2090 on. */
  readonly notYetValid: Leaf
  /** For localhost, valid, but extendedKeyUsage clientAuth only (no serverAuth). */
  readonly clientOnly: Leaf
  /** For localhost, valid for 3 more days. */
  readonly expiringSoon: Leaf
}

/** A fresh CA and its leaves, made with openssl (`openssl ca` for dates in the past or future); a reason when that is impossible. */
function makePki (): VerdictPki | { readonly missing: string } {
  const dir = mkdtempSync(join(tmpdir(), 'helseid-broker-tls-verdicts-'))
  try {
    const run = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
    const read = (name: string): string => readFileSync(join(dir, name), 'utf8')
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-subj', '/CN=tls-verdicts test CA/O=Throwaway test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    writeFileSync(join(dir, 'index.txt'), '')
    writeFileSync(join(dir, 'serial'), '1000\n')
    writeFileSync(join(dir, 'ca.cnf'), [
      '[ca]', 'default_ca = test_ca',
      '[test_ca]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256', 'policy = any', 'unique_subject = no',
      '[any]', 'commonName = supplied', ''
    ].join('\n'))
    const serverExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n'
    writeFileSync(join(dir, 'localhost.ext'), `subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n${serverExt}`)
    writeFileSync(join(dir, 'elsewhere.ext'), `subjectAltName=DNS:api.elsewhere.example\n${serverExt}`)
    writeFileSync(join(dir, 'client.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n')
    const leaf = (name: string, cn: string, sign: (csr: string, out: string) => void): Leaf => {
      run(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
      sign(`${name}.csr`, `${name}.pem`)
      return { certPem: read(`${name}.pem`), keyPem: read(`${name}.key`) }
    }
    const byX509 = (ext: string, days: number) => (csr: string, out: string): void => {
      run(['x509', '-req', '-in', csr, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', out, '-days', String(days), '-extfile', ext])
    }
    const byCa = (startdate: string, enddate: string) => (csr: string, out: string): void => {
      run(['ca', '-config', 'ca.cnf', '-batch', '-notext', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', csr, '-out', out,
        '-startdate', startdate, '-enddate', enddate, '-extfile', 'localhost.ext'])
    }
    return {
      caPem: read('ca.pem'),
      wrongName: leaf('wrong-name', 'api.elsewhere.example', byX509('elsewhere.ext', 365)),
      expired: leaf('expired', 'localhost', byCa('20200101000000Z', '20200201000000Z')),
      notYetValid: leaf('not-yet-valid', 'localhost', byCa('20900101000000Z', '20910101000000Z')),
      clientOnly: leaf('client-only', 'localhost', byX509('client.ext', 365)),
      expiringSoon: leaf('expiring-soon', 'localhost', byX509('localhost.ext', 3))
    }
  } catch (error) {
    return { missing: `openssl could not make the test certificates (${error instanceof Error ? error.message.split('\n')[0] : String(error)})` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const pki = makePki()
const skip = 'missing' in pki ? { skip: pki.missing } : {}

interface Outcome {
  /** The rows for `https://localhost:<port>`, by step. */
  readonly row: (step: string) => DoctorRow | undefined
  readonly askIt: readonly string[]
  /** The report as printed. */
  readonly text: string
}

/**
 * runDoctor as the doctor command runs it: HelseID is a loopback fake authority (plain http, all green),
 * the one API is `https://localhost:<port>`, egress.caFile holds the test CA.
 */
async function doctorFor (t: Test, extraCa: readonly string[], port: number): Promise<Outcome> {
  const authority = await startFakeAuthority()
  t.teardown(async () => { await authority.close() })
  const config = parseConfig({
    helseid: { issuer: authority.issuer },
    egress: { caFile: 'inspection-ca.pem' },
    apis: { api: { url: `https://localhost:${port}`, scopes: ['s'] } },
    tenants: { granfjelldal: { client: 'keys/granfjelldal.json', apis: ['api'] } }
  }, '/etc/helseid-broker/helseid-broker.yaml')
  const report = await runDoctor({ config, env: {}, extraCa, clock: { nowMs: () => Date.now() }, stepTimeoutMs: 2000 })
  const subject = `localhost:${port}`
  return {
    row: step => report.rows.find(row => row.subject === subject && row.step === step),
    askIt: report.askIt,
    text: formatDoctorReport(report).join('\n')
  }
}

const localhostLeaf = /CN=localhost issued by CN=tls-verdicts test CA, O=Throwaway test CA/

// Node would report a wrong name as the chain's error (ERR_TLS_CERT_ALTNAME_INVALID); doctor judges the name on its own.
t.test('a trusted certificate for another name: TLS FAIL "does not name", HTTP not tried, the ask says whose certificate it is not', skip, async t => {
  if ('missing' in pki) return
  const port = await startHttpsServer(t, { caPem: pki.caPem, ...pki.wrongName })
  const host = `localhost:${port}`

  const result = await doctorFor(t, [pki.caPem], port)

  t.match(result.row('TCP'), { status: 'OK' })
  t.match(result.row('TLS'), {
    status: 'FAIL',
    detail: /^certificate does not name localhost \(TLS inspection or a wrong route\?\): Hostname\/IP does not match certificate's altnames: .*DNS:api\.elsewhere\.example; CN=api\.elsewhere\.example issued by CN=tls-verdicts test CA, O=Throwaway test CA, valid until \d{4}-\d\d-\d\d \(36[45] days\)$/
  })
  t.match(result.row('HTTP'), { status: 'SKIP', detail: 'not tried: TLS failed' })
  t.same(result.askIt, [`Ask IT to exempt ${host} from TLS inspection: the certificate presented here is not localhost's (issued by "${caName}")`])
})

t.test('an expired certificate from the trusted CA: TLS FAIL CERT_HAS_EXPIRED, and the ask is about this server\'s clock', skip, async t => {
  if ('missing' in pki) return
  const port = await startHttpsServer(t, { caPem: pki.caPem, ...pki.expired })
  const host = `localhost:${port}`

  const result = await doctorFor(t, [pki.caPem], port)

  const tls = result.row('TLS')
  t.match(tls, { status: 'FAIL' })
  t.match(tls?.detail, /^certificate expired \(CERT_HAS_EXPIRED\): is this server's clock right\? /)
  t.match(tls?.detail, localhostLeaf)
  t.match(tls?.detail, /valid until 2020-02-01 \(-\d+ days\)$/, 'the end date, and how long ago, as a negative day count')
  t.match(result.row('HTTP'), { status: 'SKIP', detail: 'not tried: TLS failed' })
  t.same(result.askIt, [`Ask IT to check this server's clock, and whether something in between presents ${host}'s certificate (issued by "${caName}")`])
})

t.test('a certificate valid only from 2090: TLS FAIL CERT_NOT_YET_VALID, the same clock advice', skip, async t => {
  if ('missing' in pki) return
  const port = await startHttpsServer(t, { caPem: pki.caPem, ...pki.notYetValid })
  const host = `localhost:${port}`

  const result = await doctorFor(t, [pki.caPem], port)

  const tls = result.row('TLS')
  t.match(tls, { status: 'FAIL' })
  t.match(tls?.detail, /^certificate not yet valid \(CERT_NOT_YET_VALID\): is this server's clock right\? /)
  t.match(tls?.detail, /valid until 2091-01-01 \(\d+ days\)$/)
  t.same(result.askIt, [`Ask IT to check this server's clock, and whether something in between presents ${host}'s certificate (issued by "${caName}")`])
})

t.test('a trusted certificate not meant for servers (clientAuth only): TLS FAIL "certificate rejected" with the OpenSSL code', skip, async t => {
  if ('missing' in pki) return
  const port = await startHttpsServer(t, { caPem: pki.caPem, ...pki.clientOnly })
  const host = `localhost:${port}`

  const result = await doctorFor(t, [pki.caPem], port)

  const tls = result.row('TLS')
  t.match(tls, { status: 'FAIL' })
  t.match(tls?.detail, /^certificate rejected \(INVALID_PURPOSE\); CN=localhost issued by CN=tls-verdicts test CA, O=Throwaway test CA, valid until /)
  t.notMatch(tls?.detail, /not trusted|clock/, 'neither the untrusted nor the clock verdict')
  t.same(result.askIt, [`Ask IT to exempt ${host} from TLS inspection (certificate issued by "${caName}": INVALID_PURPOSE)`])
})

t.test('a trusted certificate that expires in 3 days: TLS WARN "expires soon", HTTP still tried, nothing to ask IT', skip, async t => {
  if ('missing' in pki) return
  const port = await startHttpsServer(t, { caPem: pki.caPem, ...pki.expiringSoon })

  const result = await doctorFor(t, [pki.caPem], port)

  t.match(result.row('TLS'), { status: 'WARN', detail: /^TLSv1\.[23]; CN=localhost issued by .*valid until \d{4}-\d\d-\d\d \([23] days\); trusted, name verified; expires soon$/ })
  t.match(result.row('HTTP'), { status: 'OK', detail: /GET \/: HTTP 404/ })
  t.same(result.askIt, [])
  t.match(result.text, /All checks passed \(1 warning\)\./)
})

/** A TCP server that accepts, then resets the connection as soon as the client sends anything (a firewall dropping a ClientHello by SNI). */
async function startResettingServer (t: Test): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createTcpServer(socket => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => { sockets.delete(socket) })
    socket.once('data', () => { socket.resetAndDestroy() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

t.test('a connection reset on the ClientHello: TCP OK, TLS FAIL ECONNRESET, ask why TLS is cut off', async t => {
  const port = await startResettingServer(t)
  const host = `localhost:${port}`

  const result = await doctorFor(t, [], port)

  t.match(result.row('TCP'), { status: 'OK', detail: new RegExp(`^connected to 127\\.0\\.0\\.1:${port} in \\d+ ms$`) })
  t.match(result.row('TLS'), { status: 'FAIL', detail: `TLS handshake with ${host} failed (ECONNRESET): something cuts TLS off?` })
  t.match(result.row('HTTP'), { status: 'SKIP', detail: 'not tried: TLS failed' })
  t.same(result.askIt, [`Ask IT why TLS to ${host} is cut off from this server (ECONNRESET): a firewall or proxy breaking TLS?`])
})
