/**
 * Escaping for the formats kflan renders (pure). Validation (src/inventory/schema.ts) keeps
 * hostile values out of the inventory; these functions make sure a value that slipped past it
 * still cannot start a new line, a directive, a word or a variable in the file it is written to.
 *
 * A control character (newline, carriage return, NUL, ...) has no safe spelling in these formats
 * and means validation missed something: it is refused as a kflan bug (RenderBug).
 */
import {shq} from '../remote/shell.js'

export class RenderBug extends Error {
  constructor(field: string, value: string, why: string) {
    super(`kflan bug: ${field} = ${JSON.stringify(value)} cannot be rendered (${why})`)
    this.name = 'RenderBug'
  }
}

function refuseControl(field: string, v: string): void {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
  if (/[\u0000-\u001F\u007F]/.test(v))
    throw new RenderBug(field, v, 'control character; validation should have refused it')
}

/** C escape that systemd's command-line parser (EXTRACT_CUNESCAPE) turns back into the byte. */
const hex = (ch: string) => `\\x${ch.codePointAt(0)!.toString(16).padStart(2, '0')}`

/**
 * Part of one word of an `ExecStart=`-style command line: stays one word and literal. `%` (unit
 * specifiers) and `$` (environment expansion) are doubled; backslash, quotes, whitespace and `;`
 * become C escapes, so no quoting or word splitting applies and no line ends in a backslash.
 */
export function unitArg(field: string, v: string): string {
  refuseControl(field, v)
  return v.replaceAll(/[%$\\"' ;]/g, (ch) => (ch === '%' ? '%%' : ch === '$' ? '$$' : hex(ch)))
}

/** The executable word of a command line: absolute (a leading `-`, `@`, `+`, `!` or `:` would be a systemd prefix). */
export function unitExe(field: string, v: string): string {
  if (!v.startsWith('/')) throw new RenderBug(field, v, 'an executable path must be absolute')
  return unitArg(field, v)
}

/**
 * A plain directive value (`Description=`, `EnvironmentFile=`): only specifiers are expanded
 * there, and there is no escape for a trailing backslash (it continues the line) or for
 * surrounding whitespace (systemd strips it).
 */
export function unitValue(field: string, v: string): string {
  refuseControl(field, v)
  if (v.endsWith('\\')) throw new RenderBug(field, v, 'a trailing backslash continues the line')
  if (v !== v.trim()) throw new RenderBug(field, v, 'leading or trailing whitespace')
  return v.replaceAll('%', '%%')
}

/**
 * A whole command line that is already in systemd's syntax (docker.service's own ExecStart as
 * systemd reports it): its words and `$VARIABLES` stay as they are; only specifiers are escaped,
 * since systemd reports them already expanded.
 */
export function unitCmdline(field: string, v: string): string {
  refuseControl(field, v)
  if (!v.startsWith('/')) throw new RenderBug(field, v, 'a command line must start with an absolute path')
  if (v.endsWith('\\')) throw new RenderBug(field, v, 'a trailing backslash continues the line')
  return v.replaceAll('%', '%%')
}

/**
 * A value inside a `/bin/sh -c '...'` script of a command line: shell-quoted for sh, then escaped
 * for systemd's single-quoted string (quotes and backslashes as C escapes, `%` and `$` doubled).
 */
export function unitSh(field: string, v: string): string {
  refuseControl(field, v)
  return shq(v).replaceAll(/[%$\\"']/g, (ch) => (ch === '%' ? '%%' : ch === '$' ? '$$' : hex(ch)))
}

/**
 * The inside of a double-quoted value in an environment file (systemd's EnvironmentFile= and
 * sh-compatible): backslash, double quote, `$` and backquote are backslash-escaped.
 */
export function envValue(field: string, v: string): string {
  refuseControl(field, v)
  return v.replaceAll(/[\\"$`]/g, (ch) => `\\${ch}`)
}
