/** Inventory problems with their position in the file, printed all at once. */
import {type Document, isMap, isScalar, isSeq, type LineCounter, type Node} from 'yaml'

export type Severity = 'error' | 'warning'

export interface Diagnostic {
  severity: Severity
  /** Field path, e.g. ['hosts', 2, 'address']. */
  path: (string | number)[]
  message: string
  hint?: string
  line?: number
  column?: number
}

export function formatPath(path: (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '')
}

export function formatDiagnostic(file: string, d: Diagnostic): string {
  const pos = d.line === undefined ? file : `${file}:${d.line}:${d.column ?? 1}`
  const field = d.path.length > 0 ? ` ${formatPath(d.path)}:` : ''
  const hint = d.hint ? `\n    hint: ${d.hint}` : ''
  return `${pos}: ${d.severity}:${field} ${d.message}${hint}`
}

/**
 * Finds the YAML node for a path; with `key` true, the key node of the last segment (used for
 * unknown keys). Falls back to the deepest existing ancestor so every diagnostic gets a position.
 */
export function locate(
  doc: Document,
  lc: LineCounter,
  path: (string | number)[],
  key = false,
): {line: number; column: number} | undefined {
  let node: unknown = doc.contents
  let found: Node | undefined = doc.contents ?? undefined
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      if (last && key && isScalar(pair.key)) {
        found = pair.key
        break
      }

      node = pair.value
      if (pair.value && typeof pair.value === 'object' && 'range' in pair.value) found = pair.value as Node
      else if (isScalar(pair.key)) found = pair.key
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg]
      if (!item) break
      node = item
      found = item as Node
    } else break
  }

  const offset = found?.range?.[0]
  if (offset === undefined) return undefined
  const p = lc.linePos(offset)
  return {line: p.line, column: p.col}
}

/** Levenshtein distance, for "did you mean" on unknown keys and host names. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]
    dp[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1))
      prev = tmp
    }
  }

  return dp[b.length]
}

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(word, c)
    if (d < bestD) {
      best = c
      bestD = d
    }
  }

  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}
