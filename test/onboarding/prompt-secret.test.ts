// Tests for promptSecret on a fake terminal: no echo (raw mode), editing keys, Ctrl-C, the mode restored.

import t from 'tap'
import { PassThrough } from 'node:stream'
import { canPromptSecret, PromptCancelledError, promptSecret } from '../../src/onboarding/prompt-secret.ts'

interface FakeTerminal {
  readonly input: NodeJS.ReadStream
  readonly output: PassThrough
  readonly modes: boolean[]
  readonly written: () => string
}

function fakeTerminal (): FakeTerminal {
  const modes: boolean[] = []
  const stream = new PassThrough()
  const input = Object.assign(stream, {
    isTTY: true,
    isRaw: false,
    setRawMode (mode: boolean) { modes.push(mode); input.isRaw = mode; return input }
  })
  const output = new PassThrough()
  const chunks: string[] = []
  output.on('data', (chunk: Buffer) => { chunks.push(chunk.toString()) })
  return { input: input as unknown as NodeJS.ReadStream, output, modes, written: () => chunks.join('') }
}

t.test('reads up to Enter in raw mode, with Backspace, Ctrl-U and escape sequences handled, echoing nothing', async t => {
  const terminal = fakeTerminal()
  const answer = promptSecret('Password: ', terminal)
  terminal.input.push('wrong\u0015pa\u001b[Dss\u007fs-w0rd\rignored')

  t.equal(await answer, 'pass-w0rd')
  t.same(terminal.modes, [true, false], 'raw mode on, then restored')
  t.equal(terminal.written(), 'Password: \n', 'only the prompt and a line break are written')
})

t.test('Ctrl-C and end of input cancel; the mode is restored', async t => {
  const cancelled = fakeTerminal()
  const first = promptSecret('Password: ', cancelled)
  cancelled.input.push('abc\u0003')
  await t.rejects(first, PromptCancelledError)
  t.same(cancelled.modes, [true, false])

  const ended = fakeTerminal()
  const second = promptSecret('Password: ', ended)
  ended.input.push('abc')
  ended.input.push(null)
  await t.rejects(second, PromptCancelledError)
  t.same(ended.modes, [true, false])
})

t.test('no terminal: canPromptSecret is false and promptSecret refuses', async t => {
  const input = new PassThrough() as unknown as NodeJS.ReadStream
  t.equal(canPromptSecret(input), false)
  await t.rejects(promptSecret('x', { input, output: new PassThrough() }), /needs a terminal/)
})
