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

/** Duck-typed: errors from other modules (pki, remote) carry a `hint` too. */
export function hintOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'hint' in err && typeof (err as {hint: unknown}).hint === 'string') {
    return (err as {hint: string}).hint
  }

  return undefined
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
