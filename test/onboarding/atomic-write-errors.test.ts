// The atomic file helpers when the file system says no: the error reaches the caller (never swallowed), nothing is created.

import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ensurePrivateDirectory, syncDirectory } from '../../src/onboarding/atomic-write.ts'

t.test('ensurePrivateDirectory below a regular file fails with ENOTDIR and creates nothing', async t => {
  const dir = t.testdir({ 'broker.yaml': 'a: 1\n' })
  await t.rejects(ensurePrivateDirectory(join(dir, 'broker.yaml', 'keys')), { code: 'ENOTDIR' })
  t.same(await readdir(dir), ['broker.yaml'])
  t.equal(await readFile(join(dir, 'broker.yaml'), 'utf8'), 'a: 1\n')
})

t.test('syncDirectory reports a directory that is gone instead of pretending the rename is durable; on Windows it is skipped', async t => {
  const dir = t.testdir({})
  await t.rejects(syncDirectory(join(dir, 'gone')), { code: 'ENOENT' })
  await t.resolves(syncDirectory(join(dir, 'gone'), 'win32'))
  await t.resolves(syncDirectory(dir))
})
