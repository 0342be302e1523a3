import type {RunContext} from '../engine/context.js'
/**
 * `kflan reset`: undo what `kflan init` / `join node` did on the hosts (see docs/reset.md).
 * The command parses and confirms; this runs the session and reports.
 */
import type {Cluster, Host} from '../inventory/model.js'

import {knownHostsPath, newLogger, runSession} from '../engine/session.js'
import {resetPhases} from './phases/index.js'
import {ResetState} from './state.js'

export {undoTextEdit} from './file-ops.js'
export {type HostResetPlan, planHostReset} from './plan.js'

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
}

/** The hosts a reset works on: the one asked for, else every host init works on. */
export function resetTargets(c: Cluster, host?: Host): Host[] {
  return host ? [host] : c.hosts.filter((h) => h.roles.etcd || h.roles.flannel)
}

export async function runReset(req: ResetRequest): Promise<ResetResult> {
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
    return {ctx, error, logFile: logger.file}
  } finally {
    await state.close()
    logger.close() // the observers' close is logged after runSession closed the log
  }
}
