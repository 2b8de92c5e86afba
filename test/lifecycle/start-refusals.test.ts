// Start-up and reload refusals: a busy admin port fails the start without keeping the proxy port, and a broker started
// without a config file refuses POST /reload with a broker code instead of pretending to reload.

import t from 'tap'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { startBroker } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { loadTenantCredentials } from '../../src/keys/tenant-keys.ts'
import { setUpClient, startFakes } from '../helpers/rotation-setup.ts'
import { startTestBroker } from '../helpers/test-broker.ts'
import { captureLogs } from '../helpers/capture-logs.ts'

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

t.test('the admin port in use: start-up fails with EADDRINUSE and the proxy port is released again', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'busy-port' })
  const busy = await listenOn(0)
  t.teardown(async () => { await close(busy) })
  const probe = await listenOn(0)
  const proxyPort = portOf(probe)
  await close(probe)
  const config = await loadConfig(setup.configPath)
  const credentials = await loadTenantCredentials(config)
  const logs = captureLogs()

  const started = startBroker(config, credentials, logs.logger, {
    checkKeyExpiry: false,
    listen: { proxy: { host: '127.0.0.1', port: proxyPort }, admin: { host: '127.0.0.1', port: portOf(busy) } }
  })
  const error = await started.then(async broker => { await broker.close(); return undefined }, (error: unknown) => error)

  t.match(error, { code: 'EADDRINUSE' }, 'the start fails on the admin port')
  const again = await listenOn(proxyPort).then(async server => { await close(server); return 'free' }, (error: unknown) => error)
  t.equal(again, 'free', 'the proxy listener was closed again, so its port can be taken')
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
