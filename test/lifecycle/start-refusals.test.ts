// Start-up and reload refusals: a busy port fails the start and leaves nothing open (listeners, audit file), and a broker started
// without a config file refuses POST /reload with a broker code instead of pretending to reload.

import t from 'tap'
import { once } from 'node:events'
import { readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer, type Server } from 'node:net'
import { startBroker } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { setUpClient, startFakes } from '../helpers/rotation-setup.ts'
import { startTestBroker } from '../helpers/test-broker.ts'
import { captureLogs } from '../helpers/capture-logs.ts'
import { closedPort } from '../helpers/closed-port.ts'

async function listenOn (port: number): Promise<Server> {
  const server = createServer()
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return server
}

async function close (server: Server): Promise<void> {
  await new Promise<void>(resolve => { server.close(() => { resolve() }) })
}

function portOf (server: Server): number {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** Whether this process holds `file` open (Linux: the links in /proc/self/fd). */
async function isOpen (file: string): Promise<boolean> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(fds.map(async fd => await readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return targets.includes(file)
}

for (const busyListener of ['admin', 'proxy'] as const) {
  t.test(`the ${busyListener} port in use: start-up fails with EADDRINUSE on that port, and nothing stays open`, { skip: process.platform === 'linux' ? false : 'reads /proc/self/fd' }, async t => {
    const fakes = await startFakes(t)
    const setup = await setUpClient(t, fakes, { clientId: `busy-${busyListener}` })
    const busy = await listenOn(0)
    t.teardown(async () => { await close(busy) })
    const freePort = await closedPort()
    const auditFile = join(setup.dir, 'audit.jsonl')
    const loaded = await loadConfig(setup.configPath)
    // An audit file: a resource the dependencies open at start and must close again when the start fails.
    const config = { ...loaded, audit: { file: auditFile } }
    const credentials = await loadTenantCredentials(config)
    const logs = captureLogs()
    const ports = busyListener === 'admin' ? { proxy: freePort, admin: portOf(busy) } : { proxy: portOf(busy), admin: freePort }

    const started = startBroker(config, credentials, logs.logger, {
      checkKeyExpiry: false,
      listen: { proxy: { host: '127.0.0.1', port: ports.proxy }, admin: { host: '127.0.0.1', port: ports.admin } }
    })
    const error = await started.then(async broker => { await broker.close(); return undefined }, (error: unknown) => error)

    t.match(error, { code: 'EADDRINUSE', port: portOf(busy) }, `the start fails on the ${busyListener} port`)
    t.equal(await isOpen(auditFile), false, 'the audit file the dependencies opened is closed again')
    const again = await listenOn(freePort).then(async server => { await close(server); return 'free' }, (error: unknown) => error)
    t.equal(again, 'free', 'the other listener does not keep its port')
  })
}

t.test('callers configured but their secrets not loaded: the start is refused before anything is opened', { skip: process.platform === 'linux' ? false : 'reads /proc/self/fd' }, async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'no-secrets' })
  const auditFile = join(setup.dir, 'audit.jsonl')
  const loaded = await loadConfig(setup.configPath)
  const config = {
    ...loaded,
    audit: { file: auditFile },
    callers: { epj: { name: 'epj', secret: { kind: 'file', file: join(setup.dir, 'epj.secret') }, tenants: '*', allow: [] } as const }
  }
  const credentials = await loadTenantCredentials(config)

  const error = await startBroker(config, credentials, captureLogs().logger, { checkKeyExpiry: false, listen: { proxy: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } } })
    .then(async broker => { await broker.close(); return undefined }, (error: unknown) => error)

  t.match(error, { message: 'no secret loaded for caller(s) epj' })
  t.equal(await isOpen(auditFile), false, 'the audit file was never left open')
})

t.test('POST /reload on a broker started without a config file: 422 BROKER_RELOAD_REFUSED saying why', async t => {
  const { broker, admin } = await startTestBroker(t)
  const response = await fetch(`${broker.adminUrl}/reload`, { method: 'POST' })

  t.equal(response.status, 422)
  t.match(response.headers.get('content-type'), /^application\/problem\+json/)
  t.match(await response.json(), {
    code: 'BROKER_RELOAD_REFUSED',
    detail: 'this broker was started without a config file (demo or embedded), so there is nothing to reload'
  })
  t.equal((await admin('/healthz')).status, 200, 'the broker keeps serving')
})
