// Loopback endpoints for the doctor tests: a test CA and a localhost certificate, an https server, a plain http server, a closed port and a CONNECT proxy that answers like Squid.

import type { Test } from 'tap'
export { closedPort } from '../helpers/closed-port.ts'
import { startConnectProxy as startSharedConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.ts'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface TestPki {
  /** The CA certificate (PEM), as egress.caFile would hold it. */
  readonly caPem: string
  readonly certPem: string
  readonly keyPem: string
}

const fixtures = fileURLToPath(new URL('../../../test/fixtures/tls/', import.meta.url))

/** A fresh CA and localhost certificate made with openssl, or the committed throwaway pair where openssl is missing. */
export function testPki (): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'helseid-broker-doctor-pki-'))
  try {
    const run = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' }) }
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-subj', '/CN=helseid-broker doctor test CA/O=Throwaway test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    run(['req', ...ec, '-keyout', 'key.pem', '-out', 'leaf.csr', '-subj', '/CN=localhost'])
    writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
    run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cert.pem', '-days', '3650', '-extfile', 'leaf.ext'])
    return { caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') }
  } catch {
    return {
      caPem: readFileSync(join(fixtures, 'ca.pem'), 'utf8'),
      certPem: readFileSync(join(fixtures, 'localhost-cert.pem'), 'utf8'),
      keyPem: readFileSync(join(fixtures, 'localhost-key.pem'), 'utf8')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function listen (t: Test, server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

/** An https server on 127.0.0.1 presenting the localhost certificate; answers 404 to everything. Returns its port. */
export async function startHttpsServer (t: Test, pki: TestPki): Promise<number> {
  return await listen(t, createHttpsServer({ cert: pki.certPem, key: pki.keyPem }, (_request, response) => { response.writeHead(404).end('not here') }))
}

/** A plain http server (where TLS is expected, it answers the ClientHello with 400). Returns its port. */
export async function startPlainServer (t: Test): Promise<number> {
  return await listen(t, createHttpServer((_request, response) => { response.writeHead(200).end('plain') }))
}

/** A CONNECT proxy on loopback that records every tunnel asked for and answers 502 when the target cannot be reached, as Squid does. */
export async function startConnectProxy (t: Test): Promise<ConnectProxy> {
  return await startSharedConnectProxy(t, { unreachable: 'bad-gateway' })
}
