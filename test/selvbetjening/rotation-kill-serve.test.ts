// `keys rotate` killed (SIGKILL) after every step, then the broker started on the same config: it resolves the pending key
// and serves, every time, with the key the client file holds.

import t from 'tap'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { rotationSteps } from '../../src/selvbetjening/key-rotation.ts'
import type { LogLine } from '../helpers/capture-logs.ts'
import { expectedKid, registeredFrom, rotateAndKill } from '../helpers/rotation-kill.ts'
import { issuedKids, kidInFile, readPending, startConfiguredBroker, startFakes } from '../helpers/rotation-setup.ts'

t.test('killed after each step, the broker comes back working', async t => {
  const fakes = await startFakes(t)
  for (const step of rotationSteps) {
    await t.test(`killed after "${step}", then serve`, async t => {
      const killed = await rotateAndKill(t, fakes, step)
      const { setup } = killed

      const { broker, logs, callEvents } = await startConfiguredBroker(t, setup.configPath)
      await broker.deps.keyRotation.idle()

      const kid = await kidInFile(setup.clientFile)
      t.equal(kid, expectedKid(step, killed), registeredFrom.includes(step) ? 'the registered pending key was proven and promoted' : 'the old key stays')
      t.equal(await readPending(setup), undefined, 'no pending file left')
      t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, kid, 'the running broker uses the key in the file')
      const response = await callEvents()
      t.equal(response.status, 200, 'a proxied call works')
      t.equal(issuedKids(fakes, setup.clientId).at(-1), kid, 'with a token for the key in the file')

      const messages = logs.lines.map(line => JSON.parse(line) as LogLine).map(line => line.msg)
      const names = await readdir(join(setup.dir, 'keys'))
      if (step === 'pending-saved') {
        t.ok(messages.includes('pending key discarded'), 'an unregistered pending key is discarded')
        t.ok(names.some(name => name.includes('.pending.json.discarded-')), 'and kept aside for forensics')
      } else if (step !== 'generated') {
        t.ok(messages.includes('pending key promoted'), 'a registered pending key is promoted')
        t.ok(names.some(name => name.endsWith('.bak')), 'the previous key file is kept as a backup')
      }
      if (kid !== setup.kid) {
        // The old key retired: only the new one can work now.
        fakes.selvbetjening.retireKey(setup.clientId, setup.kid)
        await broker.close()
        const again = await startConfiguredBroker(t, setup.configPath)
        t.equal((await again.callEvents()).status, 200, 'works with the old key retired')
      }
    })
  }
})
