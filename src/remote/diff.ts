/** Unified diffs for the dry-run plan (pure). Secrets and binaries are summarized, never shown. */
import {createHash} from 'node:crypto'

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex')

type Op = {t: ' ' | '-' | '+'; line: string}

/** Myers' O(ND) line diff, after stripping the common prefix and suffix. */
export function diffLines(a: string[], b: string[]): Op[] {
  let pre = 0
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++
  let suf = 0
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++
  const A = a.slice(pre, a.length - suf)
  const B = b.slice(pre, b.length - suf)
  const mid = myers(A, B)
  return [...a.slice(0, pre).map((line) => ({t: ' ' as const, line})), ...mid, ...a.slice(a.length - suf).map((line) => ({t: ' ' as const, line}))]
}

function myers(a: string[], b: string[]): Op[] {
  const n = a.length
  const m = b.length
  if (n === 0) return b.map((line) => ({t: '+', line}))
  if (m === 0) return a.map((line) => ({t: '-', line}))
  const max = n + m
  const off = max
  let v: Int32Array = new Int32Array(2 * max + 2)
  const trace: Int32Array[] = []
  let found = false
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice())
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[off + k] = x
      if (x >= n && y >= m) {
        found = true
        break
      }
    }
  }
  // Backtrack through the saved V arrays.
  trace.push(v)
  const ops: Op[] = []
  let x = n
  let y = m
  for (let d = trace.length - 2; d >= 0; d--) {
    v = trace[d]
    const k = x - y
    const prevK = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? k + 1 : k - 1
    const prevX = v[off + prevK]
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) {
      ops.push({t: ' ', line: a[x - 1]})
      x--
      y--
    }
    if (d > 0) {
      if (x === prevX) ops.push({t: '+', line: b[y - 1]})
      else ops.push({t: '-', line: a[x - 1]})
    }
    x = prevX
    y = prevY
  }
  return ops.reverse()
}

function splitLines(s: string): {lines: string[]; noEol: boolean} {
  if (s === '') return {lines: [], noEol: false}
  const noEol = !s.endsWith('\n')
  const lines = (noEol ? s : s.slice(0, -1)).split('\n')
  return {lines, noEol}
}

/** A unified diff (3 lines of context) between two texts; '' when equal. */
export function unifiedDiff(oldText: string, newText: string, oldLabel: string, newLabel: string, context = 3): string {
  if (oldText === newText) return ''
  const o = splitLines(oldText)
  const n = splitLines(newText)
  const ops = diffLines(o.lines, n.lines)
  // Mark the last line of a side that lacks a final newline.
  const out: string[] = [`--- ${oldLabel}`, `+++ ${newLabel}`]
  const idx: {op: Op; ai: number; bi: number}[] = []
  let ai = 0
  let bi = 0
  for (const op of ops) {
    idx.push({op, ai, bi})
    if (op.t !== '+') ai++
    if (op.t !== '-') bi++
  }
  // Trailing-newline differences show as a change of the last line.
  if (o.noEol !== n.noEol && o.lines.length > 0 && n.lines.length > 0) {
    const lastA = o.lines.length - 1
    const lastB = n.lines.length - 1
    const pos = idx.findIndex((e) => e.op.t === ' ' && e.ai === lastA && e.bi === lastB)
    if (pos >= 0) {
      const e = idx[pos]
      idx.splice(pos, 1, {op: {t: '-', line: e.op.line}, ai: e.ai, bi: e.bi}, {op: {t: '+', line: e.op.line}, ai: e.ai + 1, bi: e.bi})
    }
  }
  const changes = idx.map((e, i) => (e.op.t !== ' ' ? i : -1)).filter((i) => i >= 0)
  let h = 0
  while (h < changes.length) {
    const start = Math.max(0, changes[h] - context)
    let end = Math.min(idx.length - 1, changes[h] + context)
    while (h + 1 < changes.length && changes[h + 1] - context <= end + 1) {
      h++
      end = Math.min(idx.length - 1, changes[h] + context)
    }
    h++
    const slice = idx.slice(start, end + 1)
    const aStart = slice[0].ai
    const bStart = slice[0].bi
    const aLen = slice.filter((e) => e.op.t !== '+').length
    const bLen = slice.filter((e) => e.op.t !== '-').length
    out.push(`@@ -${aLen === 0 ? aStart : aStart + 1},${aLen} +${bLen === 0 ? bStart : bStart + 1},${bLen} @@`)
    for (const e of slice) {
      out.push(`${e.op.t}${e.op.line}`)
      const isLastA = e.op.t !== '+' && e.ai === o.lines.length - 1
      const isLastB = e.op.t !== '-' && e.bi === n.lines.length - 1
      if ((e.op.t === '-' && isLastA && o.noEol) || (e.op.t === '+' && isLastB && n.noEol) || (e.op.t === ' ' && isLastA && o.noEol && n.noEol)) {
        out.push('\\ No newline at end of file')
      }
    }
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
  const contentChanged = c.old !== undefined ? !c.old.equals(c.next) : c.oldSha256 !== undefined ? c.oldSha256 !== sha256hex(c.next) : true
  if (contentChanged) {
    const oldLabel = !exists ? '/dev/null' : `a${c.path}`
    const newLabel = `b${c.path}`
    if (c.secret) {
      const n = c.old === undefined ? c.next.length : changedBytes(c.old, c.next)
      lines.push(`--- ${oldLabel}`, `+++ ${newLabel}`, `(secret, ${n} bytes changed)`)
    } else if (looksBinary(c.next) || (c.old && looksBinary(c.old))) {
      lines.push(`--- ${oldLabel}`, `+++ ${newLabel}`, `(binary, ${c.old?.length ?? 0} → ${c.next.length} bytes)`)
    } else {
      lines.push(unifiedDiff(c.old?.toString('utf8') ?? '', c.next.toString('utf8'), oldLabel, newLabel).replace(/\n$/, ''))
    }
  }
  if (exists && c.oldMode !== undefined && c.newMode !== undefined && (c.oldMode & 0o7777) !== (c.newMode & 0o7777)) {
    lines.push(`mode ${octal(c.oldMode)} → ${octal(c.newMode)} ${c.path}`)
  }
  if (exists && c.oldOwner && c.newOwner && c.oldOwner !== c.newOwner) {
    lines.push(`owner ${c.oldOwner} → ${c.newOwner} ${c.path}`)
  }
  return lines.length ? `${lines.join('\n')}\n` : ''
}

/** Bytes that differ position by position, plus the length difference. */
export function changedBytes(a: Buffer, b: Buffer): number {
  let n = Math.abs(a.length - b.length)
  const len = Math.min(a.length, b.length)
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) n++
  return n
}
