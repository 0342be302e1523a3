/** What a run did, for people: per host changes (or planned changes), warnings, the log. */
import type {RunContext} from './phases/context.js'

export function changeReport(ctx: RunContext): string {
  const lines: string[] = []
  const verb = ctx.dryRun ? 'would change' : 'changed'
  for (const h of ctx.hosts) {
    if (h.changes.length === 0) continue
    lines.push(`${h.host.name}: ${verb} ${h.changes.length}`)
    for (const c of h.changes) lines.push(`  - ${c}`)
    if (ctx.dryRun) for (const d of h.diffs) lines.push(d.replace(/^/gm, '    '))
  }
  if (lines.length === 0) lines.push(ctx.dryRun ? 'dry run: nothing would change' : 'nothing changed: the cluster already matches the inventory')
  return lines.join('\n')
}

export function warningReport(ctx: RunContext): string[] {
  return [...new Set(ctx.warnings)]
}
