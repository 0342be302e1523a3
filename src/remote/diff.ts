import {structuredPatch} from 'diff'

/** Unified diffs for the dry-run plan (pure). Secrets and binaries are summarized, never shown. */
import {sha256hex} from './state-dir.js'

/** A unified diff (3 lines of context, as `diff -u`) between two texts; '' when equal. jsdiff does the diffing. */
export function unifiedDiff(oldText: string, newText: string, oldLabel: string, newLabel: string, context = 3): string {
  if (oldText === newText) return ''
  const patch = structuredPatch(oldLabel, newLabel, oldText, newText, undefined, undefined, {context})
  const out = [`--- ${oldLabel}`, `+++ ${newLabel}`]
  for (const h of patch.hunks) {
    // GNU diff numbers an empty side from the line before it (`-0,0` for a new file).
    const start = (at: number, len: number) => (len === 0 ? at - 1 : at)
    out.push(
      `@@ -${start(h.oldStart, h.oldLines)},${h.oldLines} +${start(h.newStart, h.newLines)},${h.newLines} @@`,
      ...h.lines,
    )
  }

  return `${out.join('\n')}\n`
}

/** Content that must not be shown in a plan: keys, passwords, tokens. */
export function isSecretPath(p: string): boolean {
  return /(-key\.pem|\.key|_key|\.p12|\.pfx|password|secret|token)$/i.test(p)
}

export function looksBinary(buf: Buffer): boolean {
  if (buf.includes(0)) return true
  return !Buffer.from(buf.toString('utf8'), 'utf8').equals(buf)
}

export interface ChangeRender {
  path: string
  /** Old content, when known. */
  old?: Buffer
  /** The file exists (set when its content was not fetched, e.g. a secret). Default: old !== undefined. */
  oldExists?: boolean
  /** Old content's sha256 (hex), to tell whether unfetched content changes. */
  oldSha256?: string
  next: Buffer
  secret?: boolean
  oldMode?: number
  newMode?: number
  oldOwner?: string
  newOwner?: string
}

const octal = (m: number) => `0${(m & 0o7777).toString(8).padStart(3, '0')}`

/**
 * The plan text for one file: a unified diff for text, a summary for secrets and binaries, and a
 * line for mode / owner changes. '' when nothing changes.
 */
export function renderChange(c: ChangeRender): string {
  const lines: string[] = []
  const exists = c.oldExists ?? c.old !== undefined
  const contentChanged =
    c.old === undefined ? (c.oldSha256 === undefined ? true : c.oldSha256 !== sha256hex(c.next)) : !c.old.equals(c.next)
  if (contentChanged) {
    const oldLabel = exists ? `a${c.path}` : '/dev/null'
    const newLabel = `b${c.path}`
    if (c.secret) {
      const n = c.old === undefined ? c.next.length : changedBytes(c.old, c.next)
      lines.push(`--- ${oldLabel}`, `+++ ${newLabel}`, `(secret, ${n} bytes changed)`)
    } else if (looksBinary(c.next) || (c.old && looksBinary(c.old))) {
      lines.push(`--- ${oldLabel}`, `+++ ${newLabel}`, `(binary, ${c.old?.length ?? 0} → ${c.next.length} bytes)`)
    } else {
      lines.push(
        unifiedDiff(c.old?.toString('utf8') ?? '', c.next.toString('utf8'), oldLabel, newLabel).replace(/\n$/, ''),
      )
    }
  }

  if (exists && c.oldMode !== undefined && c.newMode !== undefined && (c.oldMode & 0o7777) !== (c.newMode & 0o7777)) {
    lines.push(`mode ${octal(c.oldMode)} → ${octal(c.newMode)} ${c.path}`)
  }

  if (exists && c.oldOwner && c.newOwner && c.oldOwner !== c.newOwner) {
    lines.push(`owner ${c.oldOwner} → ${c.newOwner} ${c.path}`)
  }

  return lines.length > 0 ? `${lines.join('\n')}\n` : ''
}

/** Bytes that differ position by position, plus the length difference. */
export function changedBytes(a: Buffer, b: Buffer): number {
  let n = Math.abs(a.length - b.length)
  const len = Math.min(a.length, b.length)
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) n++
  return n
}
