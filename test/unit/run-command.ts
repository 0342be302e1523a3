/**
 * `runCommand` for unit tests: one kflan command run in this process, from the TypeScript sources,
 * the way @oclif/test v4's `runCommand` does it (oclif's own `Config.load` of this package, the
 * command's `run(argv, config)`, stdout and stderr captured, the exit code read from oclif's
 * ExitError). @oclif/test is not a dependency of kflan (it is not in /work/main/node_modules), and
 * oclif's `config.runCommand` would import the commands from dist/ (package.json `oclif.commands`),
 * which a unit test must not need: so the command class is imported from src/ here.
 */
import {Config, Errors} from '@oclif/core'
import {format} from 'node:util'

import {repoRoot} from './helpers.js'

export interface CommandResult {
  stdout: string
  stderr: string
  /** The process exit code the CLI would have: 0, or the code of oclif's exit. */
  code: number
  /** What `run()` returned (with --json, what was printed). */
  result?: unknown
  /** An error that escaped the command (not an exit): a bug in kflan or in the test. */
  error?: Error
}

let config: Config | undefined

type CommandModule = {default: {run(argv: string[], config: Config): Promise<unknown>}}
/** The commands these tests run (imports vite can resolve statically). */
const commands: Record<string, () => Promise<CommandModule>> = {
  'certs check': () => import('../../src/commands/certs/check.js'),
  render: () => import('../../src/commands/render.js'),
  validate: () => import('../../src/commands/validate.js'),
}

/** `kflan <id> <argv...>`: `id` with spaces, as typed (`certs check`). */
export async function runCommand(id: string, argv: string[]): Promise<CommandResult> {
  config ??= await Config.load(repoRoot)
  const load = commands[id]
  if (!load) throw new Error(`runCommand: no command ${id} (known: ${Object.keys(commands).join(', ')})`)
  const mod = await load()
  const out: string[] = []
  const err: string[] = []
  const stdoutWrite = process.stdout.write
  const stderrWrite = process.stderr.write
  const capture =
    (into: string[]) =>
    (chunk: string | Uint8Array): boolean => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))
      return true
    }

  // oclif's ux.stdout/stderr print through console.log/console.error (which vitest intercepts);
  // listr2 and others write to the streams.
  const {error: consoleError, log: consoleLog} = console
  console.log = (...args: unknown[]) => out.push(format(...args) + '\n')
  console.error = (...args: unknown[]) => err.push(format(...args) + '\n')
  process.stdout.write = capture(out) as typeof process.stdout.write
  process.stderr.write = capture(err) as typeof process.stderr.write
  const done = (r: Omit<CommandResult, 'stderr' | 'stdout'>): CommandResult => ({
    ...r,
    stdout: out.join(''),
    stderr: err.join(''),
  })
  try {
    const result = await mod.default.run(argv, config)
    return done({code: 0, result})
  } catch (error) {
    if (error instanceof Errors.ExitError) return done({code: error.oclif.exit ?? 1})
    // A parse error (unknown flag, missing -i): oclif prints it and exits 2.
    if (error instanceof Errors.CLIError) {
      err.push(error.message)
      return done({code: error.oclif.exit ?? 2})
    }

    return done({code: 1, error: error as Error})
  } finally {
    console.log = consoleLog
    console.error = consoleError
    process.stdout.write = stdoutWrite
    process.stderr.write = stderrWrite
  }
}
