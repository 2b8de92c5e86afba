// Key rotation refusals and recoveries: a client file changed under the broker, pending files that no longer fit, a file
// system that refuses the pending file, a registered key HelseID never accepts. The working key must survive each one.

import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { calculateJwkThumbprint } from 'jose'
import { main } from '../../src/cli.ts'
import { KeyRotationError, generateRotationKey, rotateClientKey, rotationTargetOf } from '../../src/selvbetjening/key-rotation.ts'
import { removePendingKey, savePendingKey } from '../../src/selvbetjening/rotation-files.ts'
import { privateJwk, publicOnly, selvbetjeningDownload, writeJson } from '../fixtures/client-key-files.ts'
import { issuedKids, keyDirectory, kidInFile, readPending, setUpClient, startConfiguredBroker, startFakes } from '../helpers/rotation-setup.ts'
import { logLines } from '../helpers/capture-logs.ts'
import { runCli } from '../helpers/run-cli.ts'

t.test('a client file replaced on disk since the broker loaded it is not rotated: nothing registered, the file untouched', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'swapped-client' })
  const { broker } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  // Someone drops another download for the client in place while the broker runs on the old key.
  const other = await privateJwk('P-256')
  await writeJson(setup.dir, 'keys/swapped-client.json', selvbetjeningDownload(other, { authority: fakes.authority.issuer, clientId: 'swapped-client' }))
  const otherKid = await calculateJwkThumbprint(publicOnly(other))
  const before = await readFile(setup.clientFile, 'utf8')

  const error = await broker.deps.keyRotation.rotate('granfjelldal').then(() => undefined, (error: unknown) => error)

  t.type(error, KeyRotationError)
  t.match((error as Error).message, `${setup.clientFile} holds key ${otherKid}, not the key ${setup.kid} in use; restart the broker with the file as it is before rotating`)
  t.equal(await readFile(setup.clientFile, 'utf8'), before, 'the file on disk is untouched')
  t.same(await keyDirectory(setup), ['swapped-client.json'], 'no pending, backup or temp file')
  t.same(fakes.selvbetjening.received.filter(request => request.method === 'POST'), [], 'nothing was registered')
  t.same(fakes.selvbetjening.secrets('swapped-client').map(secret => secret.kid), [setup.kid])
})

t.test('a pending key whose replaced key is no longer in the client file is moved aside, never promoted', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'changed-client' })
  const { broker, logs } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  const before = await readFile(setup.clientFile, 'utf8')
  const fresh = await generateRotationKey(setup.clientFile)
  await savePendingKey(`${setup.clientFile}.pending.json`, {
    state: 'registered',
    clientId: 'changed-client',
    createdAt: new Date().toISOString(),
    replacesKid: 'an-older-kid',
    replacesThumbprint: 'an-older-thumbprint',
    privateJwk: fresh.privateJwk
  })

  const [resolution] = await broker.deps.keyRotation.resolvePending()

  t.match(resolution, {
    outcome: 'discarded',
    kid: fresh.key.kid,
    reason: `${setup.clientFile} now holds key ${setup.kid}, not the key an-older-kid the rotation replaced (the file was changed since)`
  })
  t.equal(await readFile(setup.clientFile, 'utf8'), before, 'the client file is untouched')
  t.equal(await readPending(setup), undefined)
  t.match(await keyDirectory(setup), ['changed-client.json', /^changed-client\.json\.pending\.json\.discarded-\d{8}T\d{6}Z$/])
  t.notOk(issuedKids(fakes, 'changed-client').includes(fresh.key.kid), 'the pending key was never tried with HelseID')
  t.equal(logLines(logs.lines, 'pending key discarded').length, 1)
})

t.test('a pending file with an unusable key (public only) is moved aside with the key problem named', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'public-pending' })
  const { broker } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  const fresh = await generateRotationKey(setup.clientFile)
  const pendingFile = `${setup.clientFile}.pending.json`
  await writeFile(pendingFile, JSON.stringify({
    version: 1,
    state: 'registered',
    clientId: 'public-pending',
    createdAt: new Date().toISOString(),
    replacesKid: setup.kid,
    replacesThumbprint: 'x',
    privateJwk: { ...publicOnly(fresh.privateJwk), kid: fresh.key.kid, alg: 'PS256' }
  }), { mode: 0o600 })

  const [resolution] = await broker.deps.keyRotation.resolvePending()

  t.match(resolution, { outcome: 'discarded', kid: '(unknown)', reason: /^the pending file is unusable: its key is unusable: / })
  t.equal(await readPending(setup), undefined)
  t.equal(await kidInFile(setup.clientFile), setup.kid)
  t.equal((await readdir(join(setup.dir, 'keys'))).filter(name => name.includes('.discarded-')).length, 1)
})

t.test('a pending key check that fails (the client file broken meanwhile) is logged and the pending key kept', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'broken-client' })
  const { broker, logs } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  const fresh = await generateRotationKey(setup.clientFile)
  const pendingFile = `${setup.clientFile}.pending.json`
  await savePendingKey(pendingFile, {
    state: 'registered', clientId: 'broken-client', createdAt: new Date().toISOString(), replacesKid: setup.kid, replacesThumbprint: 'x', privateJwk: fresh.privateJwk
  })
  const pendingText = await readFile(pendingFile, 'utf8')
  await writeFile(setup.clientFile, '{"clientId": "broken-client", "privateJwk": ', { mode: 0o600 })

  const [resolution] = await broker.deps.keyRotation.resolvePending()

  t.match(resolution, { outcome: 'kept', reason: /broken-client\.json/ })
  t.equal(await readFile(pendingFile, 'utf8'), pendingText, 'the pending key is kept as it was')
  const failed = logLines(logs.lines, 'pending key check failed; kept for a later try')
  t.equal(failed.length, 1)
  t.match(failed[0], { level: 50, file: setup.clientFile, tenants: ['granfjelldal'] })
})

t.test('keys rotate: a pending key that cannot be saved stops the rotation before anything is registered', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'full-disk' })
  const before = await readFile(setup.clientFile, 'utf8')
  const pendingFile = `${setup.clientFile}.pending.json`
  const out: string[] = []
  const err: string[] = []
  const io = {
    out: (line: string) => {
      out.push(line)
      // Between generating the key and saving it, a directory takes the pending file's name: the save's rename fails.
      if (line.includes('generated a new RSA 4096 key')) {
        mkdirSync(pendingFile)
        writeFileSync(join(pendingFile, 'occupied'), 'x')
      }
    },
    err: (line: string) => { err.push(line) },
    untilStopped: async () => {}
  }

  const code = await main(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'], io)

  t.equal(code, 1)
  t.match(err.join('\n'), new RegExp(`^could not save the pending key ${pendingFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; nothing was registered \\((EISDIR|ENOTEMPTY|EEXIST|EPERM)\\)$`))
  t.equal(await readFile(setup.clientFile, 'utf8'), before, 'the client file is untouched')
  t.same(await keyDirectory(setup), ['full-disk.json', 'full-disk.json.pending.json'], 'no temp file is left behind')
  t.same(await readdir(pendingFile), ['occupied'])
  t.same(fakes.selvbetjening.received.filter(request => request.method === 'POST'), [], 'nothing was registered')
  t.notMatch(out.join('\n'), /saved it as pending/)
})

t.test('a registered key HelseID never accepts: tried again after each wait, then refused; the working key and the pending key stay', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'slow-helseid' })
  const { broker, callEvents } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  const before = await readFile(setup.clientFile, 'utf8')
  const target = rotationTargetOf(broker.deps.tenants, 'granfjelldal')
  const pendingFile = `${setup.clientFile}.pending.json`
  let newKid = ''

  const rotation = rotateClientKey(target, {
    selvbetjening: broker.deps.selvbetjening,
    tokens: broker.deps.tokens,
    clock: broker.deps.clock,
    verifyDelaysMs: [10, 10],
    onProgress: (step, detail) => {
      if (step === 'generated') newKid = /kid (\S+)$/.exec(detail)?.[1] ?? ''
      // Selvbetjening took the key, but HelseID does not know it (yet): the authority forgets it again.
      if (step === 'registered') fakes.selvbetjening.retireKey('slow-helseid', newKid)
    }
  })
  const error = await rotation.then(() => undefined, (error: unknown) => error)

  t.type(error, KeyRotationError)
  t.match((error as Error).message, /^Selvbetjening registered the new key, but HelseID did not accept it \(BROKER_IDP_REJECTED: .*\); the working key is unchanged/)
  t.match((error as Error).message, `the pending key ${pendingFile} is promoted once HelseID accepts it`)
  t.equal(issuedKids(fakes, 'slow-helseid').filter(kid => kid === newKid).length, 0)
  const tries = fakes.authority.tokenRequests.filter(request => request.clientId === 'slow-helseid' && request.assertionKid === newKid)
  t.equal(tries.length, 3, 'one try, then one after each of the two waits')
  t.equal(await readFile(setup.clientFile, 'utf8'), before, 'the client file is untouched')
  t.match(await readPending(setup), { state: 'registered', clientId: 'slow-helseid', replacesKid: setup.kid, privateJwk: { kid: newKid } })
  t.equal((await callEvents()).status, 200, 'the broker keeps working with the old key')
})

t.test('removePendingKey: a pending file already gone is fine; a directory in its place is an error, not ignored', async t => {
  const dir = t.testdir({ 'client.json.pending.json': { inside: 'x' } })
  await t.resolves(removePendingKey(join(dir, 'missing.json.pending.json')))
  await t.rejects(removePendingKey(join(dir, 'client.json.pending.json')), { code: /^(EISDIR|EPERM)$/ })
  t.same(await readdir(join(dir, 'client.json.pending.json')), ['inside'])
})

/** A rotation whose new key Selvbetjening registered and lists, but HelseID does not accept yet; the broker that ran it is closed. */
async function registeredNotYetAccepted (t: Test, clientId: string): Promise<{ fakes: Awaited<ReturnType<typeof startFakes>>, setup: Awaited<ReturnType<typeof setUpClient>>, newKid: string }> {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId })
  const { broker } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  fakes.selvbetjening.setPropagation('held')
  let newKid = ''
  const error = await rotateClientKey(rotationTargetOf(broker.deps.tenants, 'granfjelldal'), {
    selvbetjening: broker.deps.selvbetjening,
    tokens: broker.deps.tokens,
    clock: broker.deps.clock,
    verifyDelaysMs: [10],
    onProgress: (step, detail) => { if (step === 'generated') newKid = /kid (\S+)$/.exec(detail)?.[1] ?? '' }
  }).then(() => undefined, (error: unknown) => error)
  await broker.close()
  t.match(error, { message: /^Selvbetjening registered the new key, but HelseID did not accept it/ })
  t.ok(fakes.selvbetjening.secrets(clientId).some(secret => secret.kid === newKid), 'Selvbetjening lists the new key')
  return { fakes, setup, newKid }
}

t.test('a key Selvbetjening lists but HelseID does not accept yet is kept, then promoted once HelseID accepts it', async t => {
  const { fakes, setup, newKid } = await registeredNotYetAccepted(t, 'propagating')
  const pending = await readFile(`${setup.clientFile}.pending.json`, 'utf8')

  const waiting = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(waiting.code, 1)
  t.match(waiting.err, new RegExp(`is not resolved yet: Selvbetjening lists key ${newKid} but HelseID does not accept it yet \\(BROKER_IDP_REJECTED`))
  t.equal(await readFile(`${setup.clientFile}.pending.json`, 'utf8'), pending, 'the pending key is kept as it was')
  t.equal(await kidInFile(setup.clientFile), setup.kid, 'the working key is unchanged')
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 1, 'no second key was registered')

  fakes.selvbetjening.propagate()
  const finished = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(finished.code, 0, finished.err)
  t.equal(await kidInFile(setup.clientFile), newKid, 'the registered key is promoted, not replaced by another')
  t.equal(await readPending(setup), undefined)
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 1, 'still one registration')
})

t.test('a key Selvbetjening lists but HelseID still refuses 24 hours after its registration is moved aside, and a new rotation works', async t => {
  const { fakes, setup, newKid } = await registeredNotYetAccepted(t, 'never-propagated')
  const pending = JSON.parse(await readFile(`${setup.clientFile}.pending.json`, 'utf8')) as Record<string, unknown>
  t.equal(pending.state, 'registered')
  // Registered 25 hours ago: past the grace HelseID gets to pick a key up.
  await writeJson(setup.dir, `keys/never-propagated.json.pending.json`, { ...pending, registeredAt: new Date(Date.now() - 25 * 3_600_000).toISOString() })
  fakes.selvbetjening.setPropagation('immediate')

  const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(result.code, 0, result.err)
  t.match(result.out, new RegExp(`discarded the pending key ${newKid} of an earlier rotation \\(HelseID still refuses it \\(BROKER_IDP_REJECTED: .*\\) 25 h after it was registered\\)`))
  const rotated = await kidInFile(setup.clientFile)
  t.not(rotated, newKid)
  t.not(rotated, setup.kid)
  t.match(await keyDirectory(setup), ['never-propagated.json', /^never-propagated\.json\.\d{8}T\d{6}Z\.bak$/, /^never-propagated\.json\.pending\.json\.discarded-\d{8}T\d{6}Z$/])
})
