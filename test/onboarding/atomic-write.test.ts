// Tests for the atomic file helpers: owner-only modes whatever the umask, no temp files left behind, numbered backups.

import t from 'tap'
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ensurePrivateDirectory, fileTimestamp, writeBackup, writeFileAtomic } from '../../src/onboarding/atomic-write.ts'

const isPosix = process.platform !== 'win32'

t.test('writeFileAtomic replaces a file, with mode 0600 by default, and leaves no temp file', async t => {
  const dir = t.testdir({ 'key.json': 'old' })
  await chmod(join(dir, 'key.json'), 0o644)

  await writeFileAtomic(join(dir, 'key.json'), 'new')

  t.equal(await readFile(join(dir, 'key.json'), 'utf8'), 'new')
  if (isPosix) t.equal((await stat(join(dir, 'key.json'))).mode & 0o777, 0o600, 'the old mode is not inherited')
  t.same(await readdir(dir), ['key.json'])
})

t.test('writeFileAtomic keeps a given mode (e.g. a config file\'s 0640) despite the umask', { skip: !isPosix }, async t => {
  const dir = t.testdir({})
  const previous = process.umask(0o077)
  t.teardown(() => { process.umask(previous) })
  await writeFileAtomic(join(dir, 'broker.yaml'), new TextEncoder().encode('a: 1\n'), { mode: 0o640 })
  t.equal((await stat(join(dir, 'broker.yaml'))).mode & 0o777, 0o640)
})

t.test('writeFileAtomic fails cleanly: the target untouched, no temp file', async t => {
  const dir = t.testdir({ 'key.json': 'old', sub: {} })
  await t.rejects(writeFileAtomic(join(dir, 'missing', 'key.json'), 'x'), { code: 'ENOENT' })
  // Renaming a file over a directory fails after the temp file was written: it must be removed again.
  await t.rejects(writeFileAtomic(join(dir, 'sub'), 'x'))
  t.same((await readdir(dir)).sort(), ['key.json', 'sub'])
  t.same(await readdir(join(dir, 'sub')), [])
  t.equal(await readFile(join(dir, 'key.json'), 'utf8'), 'old')
})

t.test('ensurePrivateDirectory creates 0700 once and leaves an existing directory alone', async t => {
  const dir = t.testdir({ file: 'x' })
  t.equal(await ensurePrivateDirectory(join(dir, 'keys')), true)
  if (isPosix) t.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700)
  t.equal(await ensurePrivateDirectory(join(dir, 'keys')), false)
  await t.rejects(ensurePrivateDirectory(join(dir, 'file')), { code: 'ENOTDIR' })
})

t.test('writeBackup: <file>.<UTC time>.bak, numbered when taken, mode 0600', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'granfjelldal.json')
  await writeFile(file, 'current')
  const date = new Date('2025-12-31T23:59:58.999Z')

  const first = await writeBackup(file, 'one', date)
  const second = await writeBackup(file, 'two', date)

  t.equal(first, `${file}.20251231T235958Z.bak`)
  t.equal(second, `${file}.20251231T235958Z.bak.2`)
  t.equal(await readFile(first, 'utf8'), 'one')
  t.equal(await readFile(second, 'utf8'), 'two')
  if (isPosix) t.equal((await stat(first)).mode & 0o777, 0o600)
  t.equal(fileTimestamp(new Date('2025-01-02T03:04:05Z')), '20250102T030405Z')
})
