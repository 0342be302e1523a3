/**
 * An error the user can fix (a lost CA key, a bad name in the inventory):
 * printed as a message and a hint, never as a stack trace.
 */
export class PkiError extends Error {
  readonly hint: string | undefined

  constructor(message: string, hint?: string, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'PkiError'
    this.hint = hint
  }
}
