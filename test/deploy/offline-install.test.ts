import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const repo = new URL('../../../', import.meta.url).pathname

t.test('npm pack gives a tarball that installs with no registry and runs the demo', async t => {
  const dir = t.testdir({})
  // dist/ is already built by `npm test`; --ignore-scripts keeps prepack from rebuilding it under other tests.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: repo, maxBuffer: 16 * 1024 * 1024 })
  const tarball = join(dir, stdout.trim().split('\n').at(-1) ?? '')
  const target = join(dir, 'server')
  await run('mkdir', ['-p', target])
  await writeFile(join(target, 'package.json'), '{"name":"offline-server","private":true}')

  // A registry address that refuses connections: the install must need none.
  await run('npm', ['install', '--offline', '--registry', 'http://127.0.0.1:9', '--no-audit', '--no-fund', tarball], { cwd: target, maxBuffer: 16 * 1024 * 1024 })

  const child = spawn(join(target, 'node_modules', '.bin', 'helseid-broker'), ['demo', '--proxy-port', '0', '--admin-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // As on a server: without the test runner's instrumentation (NODE_OPTIONS) in the installed program.
    env: { ...process.env, NODE_OPTIONS: '' }
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  // Up to 30 s: a cold start of the installed package on a loaded machine can take seconds.
  for (let i = 0; i < 600 && child.exitCode === null && !output.includes('Stop with Ctrl-C'); i++) await new Promise(resolve => setTimeout(resolve, 50))
  const proxyUrl = /broker proxy listener\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
  if (proxyUrl === undefined) throw new Error(`the demo printed no proxy listener (exit code ${String(child.exitCode)}); stdout: ${output.slice(-600)}; stderr: ${stderr.slice(-600)}`)

  const response = await fetch(`${proxyUrl}/fjordvik/persontjenesten/api/v3/restricted-access/event/latest`)
  t.equal(response.status, 200, 'a DPoP-proxied call works from the installed package')

  child.kill('SIGTERM')
  const [code, signal] = await once(child, 'close') as [number | null, string | null]
  t.equal(code, 0, `exit code (signal ${String(signal)}; stderr tail: ${stderr.slice(-600)})`)
})
