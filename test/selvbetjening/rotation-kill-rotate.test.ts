// `keys rotate` killed (SIGKILL) after every step, then `keys rotate` again: it finishes the interrupted rotation (or
// discards its unregistered key and rotates anew), and a broker started afterwards works.

import t from 'tap'
import { rotationSteps } from '../../src/selvbetjening/key-rotation.ts'
import { registeredFrom, rotateAndKill } from '../helpers/rotation-kill.ts'
import { issuedKids, kidInFile, readPending, startConfiguredBroker, startFakes } from '../helpers/rotation-setup.ts'
import { runCli } from '../helpers/run-cli.ts'

t.test('killed after each step, keys rotate again completes', async t => {
  const fakes = await startFakes(t)
  for (const step of rotationSteps) {
    await t.test(`killed after "${step}", then keys rotate`, async t => {
      const killed = await rotateAndKill(t, fakes, step)
      const { setup } = killed

      const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

      t.equal(result.code, 0, result.err)
      const kid = await kidInFile(setup.clientFile)
      t.not(kid, setup.kid, 'the file holds a new key')
      if (registeredFrom.includes(step)) {
        t.equal(kid, killed.pendingKid, 'the interrupted rotation\'s key, not a second one')
        t.match(result.out, 'no second key was made')
      } else {
        t.not(kid, killed.pendingKid, 'a fresh key')
        if (step === 'pending-saved') t.match(result.out, `discarded the pending key ${killed.pendingKid ?? '?'} of an earlier rotation`)
      }
      t.equal(await readPending(setup), undefined, 'no pending file left')
      const registered = fakes.selvbetjening.secrets(setup.clientId).map(secret => secret.kid)
      t.ok(registered.includes(kid), 'the key in the file is registered')

      fakes.selvbetjening.retireKey(setup.clientId, setup.kid)
      const { broker, callEvents } = await startConfiguredBroker(t, setup.configPath)
      t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, kid)
      t.equal((await callEvents()).status, 200, 'the broker works with the old key retired')
      t.equal(issuedKids(fakes, setup.clientId).at(-1), kid)
    })
  }
})
