// Runs the CLI in this process with its output captured: what a terminal would show, as strings.

import { main, type CliIo } from '../../src/cli.ts'

/** Runs `argv` through main(); `io` adds to the captured streams (e.g. a readLine that answers a prompt). */
export async function runCli (argv: readonly string[], io: Partial<Pick<CliIo, 'readLine'>> = {}): Promise<{ code: number, out: string, err: string }> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, { out: line => { out.push(line) }, err: line => { err.push(line) }, untilStopped: async () => {}, ...io })
  return { code, out: out.join('\n'), err: err.join('\n') }
}
