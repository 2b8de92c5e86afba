// Asks for a secret (the zip password) on the terminal without echoing it: raw mode, read up to Enter.

/** The terminal side of promptSecret; process.stdin and process.stderr in the CLI, fakes in tests. */
export interface SecretTerminal {
  readonly input: NodeJS.ReadStream
  readonly output: NodeJS.WritableStream
}

/** The user pressed Ctrl-C (or the input ended before Enter) at the prompt. */
export class PromptCancelledError extends Error {
  constructor () {
    super('cancelled at the password prompt')
    this.name = 'PromptCancelledError'
  }
}

/** True when `input` is a terminal that promptSecret can switch to raw mode. */
export function canPromptSecret (input: NodeJS.ReadStream = process.stdin): boolean {
  return input.isTTY === true && typeof input.setRawMode === 'function'
}

/**
 * Writes `prompt` to the output and reads one line from a TTY input with echo off (raw mode); Backspace and
 * Ctrl-U edit, Enter ends, Ctrl-C rejects with PromptCancelledError. The terminal mode is restored in every case.
 * @throws PromptCancelledError on Ctrl-C or end of input
 */
export async function promptSecret (prompt: string, terminal: SecretTerminal = { input: process.stdin, output: process.stderr }): Promise<string> {
  const { input, output } = terminal
  if (!canPromptSecret(input)) throw new Error('promptSecret needs a terminal (TTY) on stdin')
  const wasRaw = input.isRaw
  output.write(prompt)
  input.setRawMode(true)
  input.setEncoding('utf8')
  return await new Promise<string>((resolve, reject) => {
    const characters: string[] = []
    let escape: 'none' | 'start' | 'csi' = 'none'
    const finish = (): void => {
      input.off('data', onData)
      input.off('end', onEnd)
      input.setRawMode(wasRaw)
      input.pause()
      output.write('\n')
    }
    const onEnd = (): void => { finish(); reject(new PromptCancelledError()) }
    const onData = (chunk: string | Buffer): void => {
      for (const character of String(chunk)) {
        // Skip terminal escape sequences (arrow keys and the like): ESC [ parameters final-byte, or ESC + one character.
        if (escape === 'start') { escape = character === '[' ? 'csi' : 'none'; continue }
        if (escape === 'csi') { if (character >= '@' && character <= '~') escape = 'none'; continue }
        if (character === '\u001b') { escape = 'start'; continue }
        if (character === '\r' || character === '\n') { finish(); resolve(characters.join('')); return }
        if (character === '\u0003' || (character === '\u0004' && characters.length === 0)) { finish(); reject(new PromptCancelledError()); return }
        if (character === '\u007f' || character === '\b') { characters.pop(); continue }
        if (character === '\u0015') { characters.length = 0; continue }
        if (character < ' ') continue
        characters.push(character)
      }
    }
    input.on('data', onData)
    input.once('end', onEnd)
    input.resume()
  })
}
