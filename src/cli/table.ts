/** A plain text table: columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => (c ?? '').padEnd(width[i]))
      .join('  ')
      .trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
