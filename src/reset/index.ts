/**
 * `kflan reset`: undo what `kflan init` / `join node` did on the hosts (see docs/reset.md).
 * The command parses and confirms; this runs the session and reports.
 */
import type {Cluster, Host} from '../inventory/model.js'
import type {RunContext} from '../phases/context.js'
import {knownHostsPath, newLogger, runSession} from '../session.js'
import {ResetState, resetPhases} from './phases.js'

export {planHostReset, undoTextEdit, type HostResetPlan} from './plan.js'

export interface ResetRequest {
  cluster: Cluster
  stateDir: string
  /** --host NAME: only this host. */
  host?: Host
  purgeData: boolean
  dryRun: boolean
  concurrency: number
  acceptNewHostKeys: boolean
  output: 'auto' | 'silent'
}

export interface ResetResult {
  ctx: RunContext
  error?: unknown
  logFile: string
  durationMs: number
}

/** The hosts a reset works on: the one asked for, else every host init works on. */
export function resetTargets(c: Cluster, host?: Host): Host[] {
  return host ? [host] : c.hosts.filter((h) => h.roles.etcd || h.roles.flannel)
}

export async function runReset(req: ResetRequest): Promise<ResetResult> {
  const t0 = performance.now()
  const logger = newLogger(req.stateDir, req.dryRun ? 'reset-dry-run' : 'reset')
  const state = new ResetState({
    purgeData: req.purgeData,
    single: req.host?.name,
    knownHostsPath: knownHostsPath(req.stateDir),
    acceptNewHostKeys: req.acceptNewHostKeys,
  })
  try {
    const {ctx, error} = await runSession(
      req.cluster,
      req.stateDir,
      resetTargets(req.cluster, req.host),
      resetPhases(state),
      {
        dryRun: req.dryRun,
        force: false,
        ignorePreflight: new Set(),
        concurrency: req.concurrency,
        acceptNewHostKeys: req.acceptNewHostKeys,
        output: req.output,
      },
      logger,
    )
    return {ctx, error, logFile: logger.file, durationMs: performance.now() - t0}
  } finally {
    await state.close()
    logger.close() // the observers' close is logged after runSession closed the log
  }
}

/** Per host, what was (or would be) done; says so when there was nothing. */
export function resetReport(ctx: RunContext): string {
  const lines: string[] = []
  const clean: string[] = []
  for (const h of ctx.hosts) {
    if (h.changes.length === 0) {
      clean.push(h.host.name)
      continue
    }
    lines.push(`${h.host.name}: ${ctx.dryRun ? 'would do' : 'done'} ${h.changes.length}`)
    for (const c of h.changes) lines.push(`  - ${c}`)
  }
  if (lines.length === 0) return `nothing to reset: kflan left nothing on ${clean.join(', ')}`
  if (clean.length > 0) lines.push(`nothing to reset on ${clean.join(', ')}`)
  return lines.join('\n')
}
