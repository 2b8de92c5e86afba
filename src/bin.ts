#!/usr/bin/env node
// Entry point: wires the CLI to the process. The first SIGINT/SIGTERM stops gracefully (drain);
// a second one, while draining, exits at once.

import { main } from './cli.ts'

let isStopping = false
const stopSignal = new Promise<void>(resolve => {
  const onStop = (): void => {
    if (isStopping) process.exit(130)
    isStopping = true
    resolve()
  }
  // Persistent listeners (not `once`): with no listener left, another module's signal handler may re-raise the signal.
  process.on('SIGINT', onStop)
  process.on('SIGTERM', onStop)
})

process.exitCode = await main(process.argv.slice(2), {
  out: line => { process.stdout.write(`${line}\n`) },
  err: line => { process.stderr.write(`${line}\n`) },
  untilStopped: async () => { await stopSignal },
  onReload: handler => { process.on('SIGHUP', handler) }
})
