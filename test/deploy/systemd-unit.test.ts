import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const unitUrl = new URL('../../../deploy/systemd/helseid-broker.service', import.meta.url)

const hasSystemdAnalyze = await promisify(execFile)('systemd-analyze', ['--version']).then(() => true, () => false)

t.test('the systemd unit verifies with systemd-analyze', { skip: hasSystemdAnalyze ? false : 'systemd-analyze is not installed here' }, async t => {
  const { stderr } = await promisify(execFile)('systemd-analyze', ['verify', unitUrl.pathname])
  t.equal(stderr.trim(), '', 'no warnings')
})

t.test('the unit keeps its hardening', async t => {
  const unit = await readFile(unitUrl, 'utf8')
  for (const line of ['User=helseid-broker', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ProtectHome=yes',
    'ReadWritePaths=/etc/helseid-broker/keys /var/log/helseid-broker', 'Restart=on-failure', 'RestartPreventExitStatus=64 78', 'UMask=0077']) {
    t.ok(unit.split('\n').includes(line), line)
  }
})
