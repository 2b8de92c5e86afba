// egress.caFile in the broker's own dispatcher: trusted directly and inside a proxy tunnel, and nothing trusted without it.

import t from 'tap'
import { fetch } from 'undici'
import { createEgressDispatcher } from '../../src/http/egress.ts'
import { startConnectProxy, startHttpsServer, testPki } from './loopback-endpoints.ts'

t.test('the extra CA makes an inspected certificate trusted, direct and through a CONNECT proxy; without it the call fails', async t => {
  const pki = testPki()
  const port = await startHttpsServer(t, pki)
  const proxy = await startConnectProxy(t)
  const url = `https://localhost:${port}/`
  const direct = createEgressDispatcher(undefined, {}, {}, [pki.caPem])
  const tunnelled = createEgressDispatcher(proxy.url, {}, { connect: { timeout: 2000 } }, [pki.caPem])
  const untrusted = createEgressDispatcher(undefined, {}, {})
  t.teardown(async () => { await Promise.all([direct.close(), tunnelled.close(), untrusted.close()]) })

  const viaDirect = await fetch(url, { dispatcher: direct })
  const viaProxy = await fetch(url, { dispatcher: tunnelled })
  const refused = await fetch(url, { dispatcher: untrusted }).then(() => 'answered', (error: unknown) => String((error as { cause?: { code?: string } }).cause?.code))

  t.equal(viaDirect.status, 404)
  t.equal(viaProxy.status, 404)
  t.same(proxy.tunnels, [`localhost:${port}`], 'the second call went through the proxy')
  t.equal(refused, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  await Promise.all([viaDirect.body?.cancel(), viaProxy.body?.cancel()])
})
