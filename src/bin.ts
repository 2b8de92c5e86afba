#!/usr/bin/env node
// Entry point: wires the CLI to the process.

import { main } from './cli.ts'

const stopSignal = new Promise<void>(resolve => {
  process.once('SIGINT', () => { resolve() })
  process.once('SIGTERM', () => { resolve() })
})

process.exitCode = await main(process.argv.slice(2), {
  out: line => { process.stdout.write(`${line}\n`) },
  err: line => { process.stderr.write(`${line}\n`) },
  untilStopped: async () => { await stopSignal },
  onReload: handler => { process.on('SIGHUP', handler) }
})
