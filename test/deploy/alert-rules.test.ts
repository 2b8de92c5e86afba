import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { startTestBroker } from '../helpers/test-broker.ts'

t.test('every broker metric the example alert rules use is one the broker exports', async t => {
  const rules = parse(await readFile(new URL('../../../deploy/prometheus/helseid-broker.rules.yaml', import.meta.url), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }
  const broker = await startTestBroker(t)
  await broker.call('/fjordvik/persontjenesten/api/v3/restricted-access/event/latest')
  const exported = await (await broker.admin('/metrics')).text()

  const used = new Set(rules.groups.flatMap(group => group.rules).flatMap(rule => [...rule.expr.matchAll(/helseid_broker_[a-z_]+/g)].map(match => match[0])))
  t.ok(used.size >= 4)
  for (const name of used) {
    const base = name.replace(/_(bucket|sum|count)$/, '')
    t.match(exported, new RegExp(`# TYPE ${base} `), `${name} is exported`)
  }
})
