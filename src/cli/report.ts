import type {RunContext} from '../engine/context.js'

/**
 * What a run did, for people and machines. A run against hosts (init, join node, reset) ends with
 * a summary read at a glance: hosts changed / unchanged / failed, service (re)starts, wall time,
 * and the next command. The full change list goes to the run log always, to the screen with
 * --verbose (and in a dry run, where the plan is the point), and to machines with --json.
 */
import {InterruptedError} from '../engine/interrupt.js'
import {formatSeconds, PhaseFailedError} from '../engine/runner.js'
import {hintOf, messageOf} from '../errors.js'

export interface RunSummary {
  command: string
  ok: boolean
  dryRun: boolean
  durationMs: number
  hosts: {changed: string[]; unchanged: string[]; failed: string[]}
  /** Service starts and restarts among the changes. */
  restarts: number
  /** Per host, every change made (or planned, in a dry run), in order. */
  changes: Record<string, string[]>
  warnings: string[]
  log: string
  next?: string
  error?: {message: string; hint?: string}
  /** Set when a SIGINT/SIGTERM stopped the run (src/engine/interrupt.ts). */
  interrupted?: string
}

/** A change that (re)starts a service: "start etcd", "restart docker (drop-in changed)", "..., then start etcd". */
const RESTART = /\b(re)?start\b/

export function summarize(
  ctx: RunContext,
  opts: {command: string; durationMs: number; log: string; error?: unknown; next?: string},
): RunSummary {
  const failed =
    opts.error instanceof PhaseFailedError ? opts.error.failures.map((f) => f.host).filter((h) => h !== 'cluster') : []
  const hosts = {changed: [] as string[], unchanged: [] as string[], failed}
  const changes: Record<string, string[]> = {}
  let restarts = 0
  for (const h of ctx.targets) {
    const {name} = h.host
    if (h.changes.length > 0) changes[name] = [...h.changes]
    restarts += h.changes.filter((c) => RESTART.test(c)).length
    if (failed.includes(name)) continue
    ;(h.changes.length > 0 ? hosts.changed : hosts.unchanged).push(name)
  }

  const error = opts.error === undefined ? undefined : {message: messageOf(opts.error), hint: hintOf(opts.error)}
  return {
    command: opts.command,
    ok: opts.error === undefined,
    dryRun: ctx.dryRun === true,
    durationMs: Math.round(opts.durationMs),
    hosts,
    restarts,
    changes,
    warnings: [...new Set(ctx.warnings)],
    log: opts.log,
    next: opts.next,
    error,
    interrupted: opts.error instanceof InterruptedError ? opts.error.signal : undefined,
  }
}

/** Every host's changes, one block per host that has any ("lab-n1: changed 3" and the items). */
export function changeList(s: RunSummary, opts: {diffs?: Map<string, string[]>} = {}): string {
  const verb = s.dryRun ? 'would change' : 'changed'
  const lines: string[] = []
  for (const [host, changes] of Object.entries(s.changes)) {
    lines.push(`${host}: ${verb} ${changes.length}`)
    for (const c of changes) lines.push(`  - ${c}`)
    for (const d of opts.diffs?.get(host) ?? []) lines.push(d.replaceAll(/^/gm, '    '))
  }

  return lines.join('\n')
}

function names(list: string[], counts?: Record<string, string[]>): string {
  const shown = list.slice(0, 8).map((n) => (counts?.[n] ? `${n} (${counts[n].length})` : n))
  return list.length > 8 ? `${shown.join(', ')} and ${list.length - 8} more` : shown.join(', ')
}

/**
 * The closing lines. `nothing`: what to say when no host changed ("nothing changed: the cluster
 * already matches the inventory").
 */
export function formatSummary(s: RunSummary, opts: {nothing: string}): string {
  const {changed, unchanged, failed} = s.hosts
  const total = changed.length + unchanged.length + failed.length
  const time = formatSeconds(s.durationMs)
  const lines: string[] = []
  if (s.ok && changed.length === 0) {
    lines.push(`${s.dryRun ? 'dry run: ' : ''}${opts.nothing} (${total} host${total === 1 ? '' : 's'}, ${time})`)
  } else {
    const head = s.dryRun
      ? `${s.command} --dry-run: ${time}, nothing was changed`
      : s.ok
        ? `${s.command}: done in ${time}`
        : s.interrupted
          ? `${s.command}: INTERRUPTED (${s.interrupted}) after ${time}`
          : `${s.command}: FAILED after ${time}`
    const counts = [`${changed.length} ${s.dryRun ? 'would change' : 'changed'}`, `${unchanged.length} unchanged`]
    if (failed.length > 0 || !s.ok) counts.push(`${failed.length} failed`)
    const restarts = `${s.restarts} service (re)start${s.restarts === 1 ? '' : 's'}${s.dryRun ? ' planned' : ''}`
    lines.push(`${head}. ${total} host${total === 1 ? '' : 's'}: ${counts.join(', ')}; ${restarts}.`)
    if (changed.length > 0) lines.push(`  ${s.dryRun ? 'would change' : 'changed'}: ${names(changed, s.changes)}`)
    if (failed.length > 0) lines.push(`  failed: ${names(failed)}`)
  }

  if (s.next) lines.push(`next: ${s.next}`)
  lines.push(`log: ${s.log}`)
  return lines.join('\n')
}
