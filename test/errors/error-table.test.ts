import t from 'tap'
import { readFile } from 'node:fs/promises'
import { errorCatalogue } from '../../src/errors.ts'

// The compiled test lives in dist/test/errors/: the README is three levels up.
const readmeUrl = new URL('../../../README.md', import.meta.url)

t.test('the README error table lists exactly the codes of the catalogue, with their statuses', async t => {
  const readme = await readFile(readmeUrl, 'utf8')
  const start = readme.indexOf('<!-- error-codes:start')
  const end = readme.indexOf('<!-- error-codes:end -->')
  t.ok(start !== -1 && end > start, 'README has the error-codes markers')
  const rows = readme.slice(start, end).split('\n')
    .map(line => /^\| `(BROKER_[A-Z_]+)` \| (\d{3})/.exec(line))
    .filter(match => match !== null)
    .map(match => [match[1], Number(match[2])] as const)

  const documented = Object.fromEntries(rows)
  const catalogued = Object.fromEntries(Object.entries(errorCatalogue).map(([code, entry]) => [code, entry.status]))
  t.same(documented, catalogued, 'README table and src/errors.ts must agree: update the table when a code is added or changed')
  t.equal(rows.length, new Set(rows.map(([code]) => code)).size, 'no code listed twice')
})
