// Key rotation: `keys rotate` end to end, refused registrations, shared client files, pending keys found at start, automatic rotation in serve.

import t from 'tap'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeProtectedHeader, type JWK } from 'jose'
import { privateValues } from '../fixtures/client-key-files.ts'
import {
  issuedKids, keyDirectory, kidInFile, readPending, setUpClient, startConfiguredBroker, startFakes
} from '../helpers/rotation-setup.ts'
import { runCli } from '../helpers/run-cli.ts'
import { logLines } from '../helpers/capture-logs.ts'

const dayMs = 86_400_000
const isPosix = process.platform !== 'win32'

t.test('keys rotate: the new key is registered, proven and promoted; the old file is kept as a backup', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'gf-client' })
  const original = JSON.parse(await readFile(setup.clientFile, 'utf8')) as Record<string, unknown>
  // A real download also carries the key in .NET XML form; it must follow the new key.
  await writeFile(setup.clientFile, JSON.stringify({ ...original, rsaPrivateKey: '<RSAKeyValue><Modulus>old</Modulus></RSAKeyValue>' }, null, 2), { mode: 0o600 })
  const originalText = await readFile(setup.clientFile, 'utf8')

  const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(result.code, 0, result.err)
  t.equal(result.err, '')
  const newKid = await kidInFile(setup.clientFile)
  t.not(newKid, setup.kid, 'the client file holds a new key')
  t.match(result.out, `Rotating the key of client gf-client (tenants: granfjelldal) in ${setup.clientFile}`)
  t.match(result.out, `generated a new RSA 4096 key for PS256, kid ${newKid}`)
  t.match(result.out, /registered its public key with Selvbetjening; it expires \d{4}-/)
  t.match(result.out, 'HelseID issued a token for a client assertion signed with the new key')
  t.match(result.out, `Done: ${setup.clientFile} holds key ${newKid}`)

  const file = JSON.parse(await readFile(setup.clientFile, 'utf8')) as Record<string, unknown>
  t.same(Object.keys(file), Object.keys(JSON.parse(originalText) as object), 'the download keeps its shape and member order')
  t.match(file, { clientId: 'gf-client', authority: fakes.authority.issuer, clientName: original.clientName, rsaKeySizeBits: 4096 })
  t.type(file.privateJwk, 'string', 'privateJwk stays a JSON string, as Selvbetjening writes it')
  const jwk = JSON.parse(String(file.privateJwk)) as JWK
  t.match(jwk, { kty: 'RSA', kid: newKid, alg: 'PS256', use: 'sig' })
  t.equal(Buffer.from(String(jwk.n), 'base64url').length * 8, 4096)
  t.match(file.rsaPrivateKey, `<RSAKeyValue><Modulus>${Buffer.from(String(jwk.n), 'base64url').toString('base64')}</Modulus><Exponent>AQAB</Exponent><P>`)
  if (isPosix) t.equal((await stat(setup.clientFile)).mode & 0o777, 0o600)

  const names = await keyDirectory(setup)
  const backup = names.find(name => /^gf-client\.json\.\d{8}T\d{6}Z\.bak$/.test(name))
  t.same(names, ['gf-client.json', backup], 'the client file and one backup; no pending or temp file')
  t.equal(await readFile(join(setup.dir, 'keys', backup ?? ''), 'utf8'), originalText, 'the backup is the previous file, byte for byte')
  t.equal(await kidInFile(join(setup.dir, 'keys', backup ?? '')), setup.kid)
  t.match(result.out, `The previous key file is kept as ${join(setup.dir, 'keys', backup ?? '')}`)

  const posts = fakes.selvbetjening.received.filter(request => request.method === 'POST')
  t.equal(posts.length, 1)
  t.match(posts[0], { clientId: 'gf-client', outcome: 'ok', contentType: 'application/json' })
  const posted = JSON.parse(posts[0]?.body ?? '{}') as JWK
  t.match(posted, { kty: 'RSA', kid: newKid, alg: 'PS256', use: 'sig', e: 'AQAB', n: jwk.n })
  t.same(privateValues(posted), [], 'only the public key is sent')
  t.same(fakes.selvbetjening.secrets('gf-client').map(secret => secret.kid), [setup.kid, newKid], 'both keys registered')
  t.same(issuedKids(fakes, 'gf-client'), [setup.kid, newKid], 'a token with the old key (to register), then one with the new key (the proof)')
  for (const value of privateValues(jwk)) t.notOk(result.out.includes(value.slice(0, 16)), 'no private key member printed')

  // A broker started on the rotated file signs with the new key, also once the old key is retired.
  fakes.selvbetjening.retireKey('gf-client', setup.kid)
  const { broker, callEvents } = await startConfiguredBroker(t, setup.configPath)
  t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, newKid)
  t.equal((await callEvents()).status, 200)
  t.equal(issuedKids(fakes, 'gf-client').at(-1), newKid)
  const forwarded = fakes.persontjenesten.received.at(-1)
  t.match(forwarded, { outcome: 'ok', tokenClaims: { client_id: 'gf-client' } })
})

t.test('a plain JWK file is replaced by the new JWK with kid, alg and use', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'jwk-client', shape: 'jwk' })

  const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(result.code, 0, result.err)
  const file = JSON.parse(await readFile(setup.clientFile, 'utf8')) as JWK
  t.match(file, { kty: 'RSA', kid: await kidInFile(setup.clientFile), alg: 'PS256', use: 'sig', d: String })
  t.not(file.kid, setup.kid)
  const { callEvents } = await startConfiguredBroker(t, setup.configPath)
  t.equal((await callEvents()).status, 200)
})

t.test('a refused registration leaves the working key and a pending key; it is discarded later and the next rotation works', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'refused-client' })
  const before = await readFile(setup.clientFile, 'utf8')
  fakes.selvbetjening.setMode('unavailable')

  const refused = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(refused.code, 1)
  t.match(refused.err, /^Selvbetjening did not register the new key: BROKER_SELVBETJENING_FAILED: Selvbetjening POST \/v1\/client-secret answered HTTP 503.*; the working key is unchanged/)
  t.equal(await readFile(setup.clientFile, 'utf8'), before, 'the client file is untouched')
  const pending = await readPending(setup)
  t.match(pending, { version: 1, state: 'generated', clientId: 'refused-client', replacesKid: setup.kid, privateJwk: { kty: 'RSA', alg: 'PS256' } })
  if (isPosix) t.equal((await stat(`${setup.clientFile}.pending.json`)).mode & 0o777, 0o600)

  // Started like serve: the pending key is checked with HelseID, which does not know it, so it is moved aside.
  fakes.selvbetjening.setMode('ok')
  const { broker, logs, callEvents } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  t.equal(await readPending(setup), undefined)
  t.match(await keyDirectory(setup), ['refused-client.json', /^refused-client\.json\.pending\.json\.discarded-\d{8}T\d{6}Z$/])
  const discarded = logLines(logs.lines, 'pending key discarded')
  t.equal(discarded.length, 1)
  t.match(discarded[0], { level: 40, kid: (pending?.privateJwk as JWK | undefined)?.kid, reason: /^HelseID does not accept it \(BROKER_IDP_REJECTED: .*\): it was never registered$/ })
  t.equal(await kidInFile(setup.clientFile), setup.kid)
  t.equal((await callEvents()).status, 200, 'the broker works with the old key')
  await broker.close()

  const again = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])
  t.equal(again.code, 0, again.err)
  t.not(await kidInFile(setup.clientFile), setup.kid)
})

t.test('a pending key HelseID refuses is kept while Selvbetjening cannot say whether it was registered', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'unknown-client' })
  fakes.selvbetjening.setMode('unavailable')
  t.equal((await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])).code, 1)
  const pendingBefore = await readFile(`${setup.clientFile}.pending.json`, 'utf8')

  // Selvbetjening still down at start: HelseID refuses the key, but whether it was registered cannot be known.
  const first = await startConfiguredBroker(t, setup.configPath)
  await first.broker.deps.keyRotation.idle()
  await first.broker.close()

  t.equal(await readFile(`${setup.clientFile}.pending.json`, 'utf8'), pendingBefore, 'the pending key is kept, byte for byte')
  t.equal(logLines(first.logs.lines, 'pending key discarded').length, 0, 'not discarded as "never registered"')
  t.match(logLines(first.logs.lines, 'pending key unresolved; kept for a later try'), [{
    level: 40,
    reason: /^HelseID refuses it \(BROKER_IDP_REJECTED: .*\), and Selvbetjening could not be asked whether it is registered \(BROKER_SELVBETJENING_FAILED: .*HTTP 503/
  }])

  // Once Selvbetjening answers that it does not list the key, it is moved aside.
  fakes.selvbetjening.setMode('ok')
  const second = await startConfiguredBroker(t, setup.configPath)
  await second.broker.deps.keyRotation.idle()
  t.equal(await readPending(setup), undefined)
  t.match(logLines(second.logs.lines, 'pending key discarded'), [{ reason: /it was never registered$/ }])
  t.equal(await kidInFile(setup.clientFile), setup.kid, 'the working key never changed')
})

t.test('keys rotate itself first discards a pending key HelseID does not know', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'stale-client' })
  fakes.selvbetjening.setMode('unavailable')
  t.equal((await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])).code, 1)
  const stale = (await readPending(setup))?.privateJwk as JWK | undefined
  fakes.selvbetjening.setMode('ok')

  const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])

  t.equal(result.code, 0, result.err)
  t.match(result.out, `discarded the pending key ${stale?.kid ?? '?'} of an earlier rotation (HelseID does not accept it`)
  const newKid = await kidInFile(setup.clientFile)
  t.not(newKid, stale?.kid)
  t.not(newKid, setup.kid)
})

t.test('tenants sharing one client file rotate once, together', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'supplier', tenants: ['fjordvik', 'nordvik'] })

  const result = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'nordvik'])

  t.equal(result.code, 0, result.err)
  t.match(result.out, 'Rotating the key of client supplier (tenants: fjordvik, nordvik)')
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 1, 'one registration for the shared file')
  const newKid = await kidInFile(setup.clientFile)
  const { broker, callEvents } = await startConfiguredBroker(t, setup.configPath)
  for (const tenant of ['fjordvik', 'nordvik']) {
    t.equal(broker.deps.tenants.get(tenant)?.credentials.key.kid, newKid)
    t.equal((await callEvents(tenant)).status, 200, `${tenant} works`)
  }
})

t.test('a pending key found at start that HelseID accepts is promoted, and the running broker switches to it', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'interrupted-client' })
  // An interrupted rotation, as the kill tests produce it: registered, the client file not yet replaced.
  const { broker: first } = await startConfiguredBroker(t, setup.configPath)
  const { generateRotationKey } = await import('../../src/selvbetjening/key-rotation.ts')
  const { savePendingKey } = await import('../../src/selvbetjening/rotation-files.ts')
  const fresh = await generateRotationKey(setup.clientFile)
  const runtime = first.deps.tenants.get('granfjelldal')
  if (runtime === undefined) throw new Error('no tenant')
  await first.deps.selvbetjening.registerClientSecret({ tenant: 'granfjelldal', clientId: 'interrupted-client', key: runtime.credentials.key, dpopKey: runtime.dpopKey }, fresh.key.publicJwk)
  await savePendingKey(`${setup.clientFile}.pending.json`, {
    state: 'generated', clientId: 'interrupted-client', createdAt: new Date().toISOString(), replacesKid: setup.kid, replacesThumbprint: runtime.credentials.key.thumbprint, privateJwk: fresh.privateJwk
  })
  await first.close()

  const { broker, logs, callEvents } = await startConfiguredBroker(t, setup.configPath)
  t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, setup.kid, 'loaded with the file as it was')
  await broker.deps.keyRotation.resolvePending()
  await broker.deps.keyRotation.idle()

  t.equal(await kidInFile(setup.clientFile), fresh.key.kid, 'promoted into the client file')
  t.equal(await readPending(setup), undefined)
  t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, fresh.key.kid, 'the running tenant switched')
  t.match(logLines(logs.lines, 'pending key promoted'), [{ level: 30, kid: fresh.key.kid, previousKid: setup.kid, switched: ['granfjelldal'] }])
  fakes.selvbetjening.retireKey('interrupted-client', setup.kid)
  t.equal((await callEvents()).status, 200)
  t.equal(issuedKids(fakes, 'interrupted-client').at(-1), fresh.key.kid)
})

t.test('a pending key is kept while HelseID cannot be reached, and resolved once it can', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'offline-client' })
  fakes.selvbetjening.setMode('unavailable')
  t.equal((await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])).code, 1)
  fakes.selvbetjening.setMode('ok')
  const { broker, logs } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  t.equal(await readPending(setup), undefined, 'start-up already resolved it')

  // A second refused rotation, this time with HelseID down when the broker checks.
  fakes.selvbetjening.setMode('unavailable')
  await t.rejects(broker.deps.keyRotation.rotate('granfjelldal'), /Selvbetjening did not register the new key/)
  fakes.selvbetjening.setMode('ok')
  fakes.authority.setTokenEndpointMode('unavailable')
  const [kept] = await broker.deps.keyRotation.resolvePending()
  t.match(kept, { outcome: 'kept', reason: /HelseID could not be asked about it: BROKER_IDP_UNREACHABLE/ })
  t.match(await readPending(setup), { state: 'generated' })
  t.match(logLines(logs.lines, 'pending key unresolved; kept for a later try'), [{ level: 40 }])
  t.match(logLines(logs.lines, 'key rotation failed; the working key is unchanged'), [{ level: 50, tenants: ['granfjelldal'] }])
  fakes.authority.setTokenEndpointMode('ok')
  const [later] = await broker.deps.keyRotation.resolvePending()
  t.match(later, { outcome: 'discarded' })
  t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, setup.kid)
})

t.test('a pending file that is unusable or for another client is moved aside, never used', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'odd-client' })
  const { broker } = await startConfiguredBroker(t, setup.configPath)
  await broker.deps.keyRotation.idle()
  await writeFile(`${setup.clientFile}.pending.json`, '{"version": 1, "state": "registered"', { mode: 0o600 })
  t.match(await broker.deps.keyRotation.resolvePending(), [{ outcome: 'discarded', reason: 'the pending file is unusable: it is not valid JSON' }])

  const { generateRotationKey } = await import('../../src/selvbetjening/key-rotation.ts')
  const { savePendingKey } = await import('../../src/selvbetjening/rotation-files.ts')
  const other = await generateRotationKey(setup.clientFile)
  await savePendingKey(`${setup.clientFile}.pending.json`, {
    state: 'registered', clientId: 'someone-else', createdAt: new Date().toISOString(), replacesKid: setup.kid, replacesThumbprint: 'x', privateJwk: other.privateJwk
  })
  t.match(await broker.deps.keyRotation.resolvePending(), [{ outcome: 'discarded', reason: /made for client someone-else/ }])
  t.equal((await readdir(join(setup.dir, 'keys'))).filter(name => name.includes('.discarded-')).length, 2)
  t.equal(await kidInFile(setup.clientFile), setup.kid)
})

t.test('serve with keys.autoRotate rotates a key within keys.rotateDays once, and keeps serving with the new key', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'auto-client', keys: 'autoRotate: true, rotateDays: 60' })
  fakes.selvbetjening.setExpiration('auto-client', setup.kid, new Date(Date.now() + 20 * dayMs).toISOString())

  const { broker, logs, callEvents } = await startConfiguredBroker(t, setup.configPath, { checkKeyExpiry: true })
  t.equal((await callEvents()).status, 200, 'serving with the old key')
  await broker.deps.keyExpiry.checkNow()
  await broker.deps.keyRotation.idle()

  const newKid = await kidInFile(setup.clientFile)
  t.not(newKid, setup.kid, 'rotated')
  t.equal(broker.deps.tenants.get('granfjelldal')?.credentials.key.kid, newKid, 'the running broker uses the new key')
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 1, 'once')
  t.match(logLines(logs.lines, 'key due for rotation'), [{ kid: setup.kid, daysLeft: 19, rotateDays: 60 }])
  t.match(logLines(logs.lines, 'key rotated'), [{ level: 30, kid: newKid, previousKid: setup.kid, switched: ['granfjelldal'], backupFile: /\.bak$/ }])
  await broker.deps.keyExpiry.checkNow()
  t.match(broker.deps.keyExpiry.forTenant('granfjelldal'), { kid: newKid, daysLeft: Number, isExpiringSoon: false }, 'the new key\'s expiry is read')
  t.ok((broker.deps.keyExpiry.forTenant('granfjelldal')?.daysLeft ?? 0) > 700)
  await broker.deps.keyRotation.idle()
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 1, 'no second rotation')

  const newJwk = JSON.parse(String((JSON.parse(await readFile(setup.clientFile, 'utf8')) as { privateJwk: string }).privateJwk)) as JWK
  for (const value of privateValues(newJwk)) t.notOk(logs.text().includes(value.slice(0, 16)), 'no private key member in the log (trace level)')
  const status = await (await fetch(`${broker.adminUrl}/status`)).json() as { tenants: Array<{ name: string, key: { kid: string, daysLeft: number | null } }> }
  t.match(status.tenants.find(tenant => tenant.name === 'granfjelldal')?.key, { kid: newKid, daysLeft: Number }, '/status shows the new key')

  fakes.selvbetjening.retireKey('auto-client', setup.kid)
  const response = await callEvents()
  t.equal(response.status, 200, 'works with the old key retired')
  t.equal(issuedKids(fakes, 'auto-client').at(-1), newKid)
  const assertionKids = fakes.authority.tokenRequests.filter(request => request.clientId === 'auto-client' && request.scope === 'nhn:hgd-persontjenesten-api/restricted-access' && request.outcome === 'issued').map(request => request.assertionKid)
  t.same(assertionKids, [setup.kid, newKid], 'the API token was fetched anew with the new key (the cache key holds the kid)')
  t.equal(decodeProtectedHeader(fakes.authority.issuedTokens.at(-1) ?? '').typ, 'at+jwt')
})

t.test('serve without keys.autoRotate (the default) only warns', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'manual-client' })
  fakes.selvbetjening.setExpiration('manual-client', setup.kid, new Date(Date.now() + 20 * dayMs).toISOString())

  const { broker, logs } = await startConfiguredBroker(t, setup.configPath, { checkKeyExpiry: true })
  await broker.deps.keyExpiry.checkNow()
  await broker.deps.keyRotation.idle()

  t.equal(broker.deps.config.keys.autoRotate, false)
  t.equal(await kidInFile(setup.clientFile), setup.kid)
  t.equal(fakes.selvbetjening.received.filter(request => request.method === 'POST').length, 0)
  t.equal(logLines(logs.lines, 'key due for rotation').length, 0)
})

t.test('usage: keys rotate needs --config and --tenant, a known tenant and a known pause step', async t => {
  const fakes = await startFakes(t)
  const setup = await setUpClient(t, fakes, { clientId: 'usage-client' })
  const noTenant = await runCli(['keys', 'rotate', '--config', setup.configPath])
  const unknown = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'nowhere'])
  process.env.HELSEID_BROKER_ROTATION_PAUSE_AFTER = 'lunch'
  const badStep = await runCli(['keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'])
  delete process.env.HELSEID_BROKER_ROTATION_PAUSE_AFTER
  const help = await runCli(['--help'])

  t.equal(noTenant.code, 64)
  t.match(noTenant.err, 'keys rotate needs --config FILE --tenant NAME')
  t.equal(unknown.code, 64)
  t.match(unknown.err, `no tenant named "nowhere" in ${setup.configPath}; configured: granfjelldal`)
  t.equal(badStep.code, 64)
  t.match(badStep.err, 'HELSEID_BROKER_ROTATION_PAUSE_AFTER: unknown rotation step "lunch"')
  t.match(help.out, 'helseid-broker keys rotate --config FILE --tenant NAME')
  t.equal(await kidInFile(setup.clientFile), setup.kid)
})

t.test('renderClientFile keeps the file\'s shape: a JWK set gets the one new key, a download its members', async t => {
  const { renderClientFile } = await import('../../src/selvbetjening/rotation-files.ts')
  const jwk: JWK = { kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB', p: 'AQ', q: 'AQ', dp: 'AQ', dq: 'AQ', qi: 'AQ', kid: 'k', alg: 'PS256', use: 'sig' }
  t.same(JSON.parse(renderClientFile('{"keys":[{"kty":"EC"}],"extra":1}', jwk)), { keys: [jwk], extra: 1 })
  t.same(JSON.parse(renderClientFile('\uFEFF{"kty":"EC","crv":"P-256"}', jwk)), jwk)
  const download = JSON.parse(renderClientFile('{"clientId":"c","privateJwk":{"kty":"EC"},"scopes":["a"]}', jwk)) as Record<string, unknown>
  t.same(download, { clientId: 'c', privateJwk: JSON.stringify(jwk), scopes: ['a'] }, 'no rsaPrivateKey or rsaKeySizeBits added when the file had none')
  t.throws(() => renderClientFile('[]', jwk), TypeError)
})
