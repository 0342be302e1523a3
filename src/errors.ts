/**
 * Errors a user can fix. Commands print them as a short message plus a hint, never a stack trace.
 * Anything else that escapes is a bug and is reported as one (see src/cli/base-command.ts).
 */
export class KflanError extends Error {
  /** What the user can do about it. */
  readonly hint?: string
  /** Process exit code: 2 for usage/input errors, 1 for failures on hosts. */
  readonly exitCode: number

  constructor(message: string, opts: {hint?: string; exitCode?: number; cause?: unknown} = {}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'KflanError'
    this.hint = opts.hint
    this.exitCode = opts.exitCode ?? 1
  }
}

/** Bad input: inventory, flags, arguments. Exit code 2, nothing touched. */
export class InputError extends KflanError {
  constructor(message: string, opts: {hint?: string; cause?: unknown} = {}) {
    super(message, {...opts, exitCode: 2})
    this.name = 'InputError'
  }
}

/**
 * The hint of an error the user can fix. Every module's errors (pki, remote, engine) extend
 * KflanError, so this is the one place a hint is looked up; anything else has none.
 */
export function hintOf(err: unknown): string | undefined {
  return err instanceof KflanError ? err.hint : undefined
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
