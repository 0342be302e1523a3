/** The doctor's results for people (pure): grouped by host, failures first, then a summary. */
import type {CheckResult, DoctorReport, Status} from './types.js'

const ORDER: Record<Status, number> = {fail: 0, warn: 1, ok: 2}
const MARK: Record<Status, string> = {fail: 'FAIL', warn: 'WARN', ok: 'ok'}

/**
 * `hostOrder`: host names in inventory order. `problemsOnly`: leave out ok results.
 * Groups: the cluster first, then each host; inside a group failures, then warnings, then ok.
 */
export function formatReport(report: DoctorReport, hostOrder: string[], opts: {problemsOnly?: boolean} = {}): string {
  const groups = new Map<string, CheckResult[]>()
  groups.set('cluster', [])
  for (const h of hostOrder) groups.set(h, [])
  for (const r of report.results) {
    const g = r.scope === 'cluster' ? 'cluster' : r.host!
    groups.set(g, [...(groups.get(g) ?? []), r])
  }

  const idWidth = Math.max(0, ...report.results.map((r) => r.id.length))
  const lines: string[] = []
  for (const [name, rs] of groups) {
    const shown = rs.filter((r) => !opts.problemsOnly || r.status !== 'ok')
    if (shown.length === 0) continue
    const worst = rs.reduce<Status>((w, r) => (ORDER[r.status] < ORDER[w] ? r.status : w), 'ok')
    lines.push(`${name}${worst === 'ok' ? '' : ` (${MARK[worst]})`}`)
    for (const r of [...shown].sort((a, b) => ORDER[a.status] - ORDER[b.status])) {
      lines.push(`  ${MARK[r.status].padEnd(4)}  ${r.id.padEnd(idWidth)}  ${r.message}`)
      if (r.hint && r.status !== 'ok') lines.push(`  ${''.padEnd(4)}  ${''.padEnd(idWidth)}  hint: ${r.hint}`)
    }

    lines.push('')
  }

  const s = report.summary
  const scope = report.limitedTo ? ` (limited to ${report.limitedTo.join(', ')})` : ''
  lines.push(
    `cluster ${report.cluster}${scope}: ${s.fail} failed, ${s.warn} warning${s.warn === 1 ? '' : 's'}, ${s.ok} ok in ${(report.durationMs / 1000).toFixed(1)} s`,
  )
  const failed = report.results.filter((r) => r.status === 'fail')
  if (failed.length > 0) lines.push(`failed: ${failed.map((r) => (r.host ? `${r.host} ${r.id}` : r.id)).join(', ')}`)
  return lines.join('\n')
}
