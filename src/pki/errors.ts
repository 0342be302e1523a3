/**
 * An error the user can fix (a lost CA key, a bad name in the inventory): a KflanError, so it is
 * printed as a message and a hint, never as a stack trace. Exit code 1 (the default of KflanError).
 */
import {KflanError} from '../errors.js'

export class PkiError extends KflanError {
  constructor(message: string, hint?: string, options?: {cause?: unknown}) {
    super(message, {hint, cause: options?.cause})
    this.name = 'PkiError'
  }
}
