// Kill tests: `helseid-broker keys rotate` in a child process, paused after one step (HELSEID_BROKER_ROTATION_PAUSE_AFTER)
// and killed there with SIGKILL; the fakes run in the test process and outlive it.

import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { JWK } from 'jose'
import type { RotationStep } from '../../src/selvbetjening/key-rotation.ts'
import { kidInFile, readPending, setUpClient, type ClientSetup, type Fakes } from './rotation-setup.ts'

const bin = fileURLToPath(new URL('../../src/bin.js', import.meta.url))

/** What the kill left behind. */
export interface Killed {
  readonly setup: ClientSetup
  /** The kid of the pending key, when one was written. */
  readonly pendingKid: string | undefined
  /** The client file's kid right after the kill. */
  readonly kidAfterKill: string
  readonly stdout: string
}

/** Steps after which the pending key is registered with Selvbetjening (HelseID accepts it on recovery). */
export const registeredFrom: readonly RotationStep[] = ['registered', 'pending-registered', 'verified', 'backed-up', 'promoted']

/** Sets up a client, runs the rotation in a child until it pauses after `step`, SIGKILLs it and checks the files left. */
export async function rotateAndKill (t: Test, fakes: Fakes, step: RotationStep): Promise<Killed> {
  const setup = await setUpClient(t, fakes, { clientId: `kill-${step}` })
  const child = spawn(process.execPath, [bin, 'keys', 'rotate', '--config', setup.configPath, '--tenant', 'granfjelldal'], {
    env: { ...process.env, HELSEID_BROKER_ROTATION_PAUSE_AFTER: step },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => { child.once('close', (code, signal) => { resolve({ code, signal }) }) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  const marker = `rotation paused after step ${step}`
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no pause marker within 60 s; stderr: ${stderr}`)) }, 60_000)
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      if (stderr.includes(marker)) { clearTimeout(timer); resolve() }
    })
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`the child exited (${String(code)}) before pausing: ${stdout} ${stderr}`)) }, reject)
  })
  child.kill('SIGKILL')
  t.match(await exited, { signal: 'SIGKILL' }, `killed after ${step}`)

  // Right after the kill: the client file loads and holds the old key, or (only once promoted) the new one; no temp file.
  const pending = await readPending(setup)
  const pendingKid = (pending?.privateJwk as JWK | undefined)?.kid
  const kidAfterKill = await kidInFile(setup.clientFile)
  t.equal(kidAfterKill, step === 'promoted' ? pendingKid : setup.kid, 'the client file is whole: the old key, or the new one once promoted')
  t.same((await readdir(join(setup.dir, 'keys'))).filter(name => name.endsWith('.tmp')), [], 'no temp file left')
  t.equal(pending?.state, step === 'generated' ? undefined : ['pending-saved', 'registered'].includes(step) ? 'generated' : 'registered', 'the pending file\'s state')
  const listed = fakes.selvbetjening.secrets(setup.clientId).map(secret => secret.kid)
  t.equal(listed.includes(pendingKid ?? '-'), registeredFrom.includes(step), 'registered with Selvbetjening from step "registered" on')
  return { setup, pendingKid, kidAfterKill, stdout }
}

/** The kid the client file should hold once the pending key is resolved. */
export function expectedKid (step: RotationStep, killed: Killed): string | undefined {
  return registeredFrom.includes(step) ? killed.pendingKid : killed.setup.kid
}
