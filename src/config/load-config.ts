// Reads the YAML (or JSON) config file from disk and hands its contents to parseConfig.

import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { LineCounter, parseDocument, type YAMLError } from 'yaml'
import { ConfigError } from '../errors.ts'
import type { BrokerConfig } from './config.ts'
import { parseConfig } from './parse-config.ts'

/**
 * Loads and validates the config file; a relative `file` resolves against the working directory.
 * @throws ConfigError when the file cannot be read, is not valid YAML, or holds invalid settings
 */
export async function loadConfig (file: string): Promise<BrokerConfig> {
  const source = resolve(file)
  let text: string
  try {
    text = await readFile(source, 'utf8')
  } catch (error) {
    throw new ConfigError([`(file): cannot read ${source}: ${errorCode(error)}`])
  }
  return parseConfigText(text, source)
}

/**
 * Parses config text (YAML 1.2; JSON is valid YAML); `source` is the absolute path relative paths resolve against.
 * @throws ConfigError listing YAML syntax errors with line and column, or every invalid setting
 */
export function parseConfigText (text: string, source: string): BrokerConfig {
  const lineCounter = new LineCounter()
  const document = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false, uniqueKeys: true })
  const problems = [...document.errors, ...document.warnings]
  if (problems.length > 0) throw new ConfigError(problems.map(problem => describeYamlError(problem, lineCounter)))
  return parseConfig(document.toJS({ maxAliasCount: 100 }), source)
}

function describeYamlError (error: YAMLError, lineCounter: LineCounter): string {
  const { line, col } = lineCounter.linePos(error.pos[0])
  return `(yaml) line ${line}, column ${col}: ${error.message.split('\n')[0] ?? error.code}`
}

const fsHints: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory'
}

function errorCode (error: unknown): string {
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined
  if (code === undefined) return error instanceof Error ? error.message : String(error)
  const hint = fsHints[code]
  return hint === undefined ? code : `${code} (${hint})`
}
