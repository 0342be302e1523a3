import {setTimeout as sleep} from 'node:timers/promises'

import type {HostRun, RunContext} from '../engine/context.js'
import type {UnitState} from '../host/units.js'

import {throwIfInterrupted} from '../engine/interrupt.js'
import {pkiFiles} from '../pki/cluster.js'
import {statFiles} from '../remote/file-stat.js'
import {writeFiles} from '../remote/files.js'
/** Helpers every phase uses: writing rendered files and acting on what changed. */
import {binaries, type FileSpec, renderHost} from '../render/index.js'
import {retiredFiles} from '../render/paths.js'

const rendered = new WeakMap<HostRun, FileSpec[]>()

/** The host's rendered files, once per run (facts supply docker's ExecStart). */
export function desiredFiles(ctx: RunContext, h: HostRun): FileSpec[] {
  let files = rendered.get(h)
  if (!files) {
    files = renderHost(ctx.cluster, h.host, {
      pki: pkiFiles(ctx.stateDir),
      dockerExecStart: vendorExecStart(h.facts.docker.execStart),
    })
    rendered.set(h, files)
  }

  return files
}

/**
 * Reads the state of every file and binary this run manages on the host in one round trip
 * (binaries by rsync-style quick check), for the phases to use.
 */
export async function prefetchFileStates(ctx: RunContext, h: HostRun, extra: string[] = []): Promise<void> {
  const paths = [
    ...new Set([
      ...binaries(ctx.cluster, h.host).map((b) => b.dest),
      ...desiredFiles(ctx, h).map((f) => f.path),
      ...extra,
      ...retiredFiles(ctx.cluster, h.host),
    ]),
  ]
  h.fileStates = await statFiles(h.remote, paths, {quick: true})
}

/**
 * docker.service's ExecStart without kflan's own addition: once the drop-in is in place, systemd
 * reports the drop-in's ExecStart, which must not grow on every run.
 */
export function vendorExecStart(execStart: string | undefined): string | undefined {
  return execStart?.replace(/(\s+\$\{?DOCKER_NETWORK_OPTIONS\}?)+\s*$/, '')
}

/**
 * Writes the files that differ (atomically, backing up files kflan did not create), records each
 * change, and notes the restarts and reloads the changes require. Returns the changed paths.
 */
export async function applyFiles(ctx: RunContext, h: HostRun, specs: FileSpec[]): Promise<string[]> {
  if (specs.length === 0) return []
  const changes = await ctx.wetPlanned(
    h,
    (dryRun) => writeFiles(h.remote, specs, {dryRun, known: h.fileStates}),
    (all, dryRun) =>
      all
        .filter((c) => c.result !== 'unchanged')
        .map(
          (c) =>
            `${dryRun ? 'would write' : c.contentChanged ? c.result : 'fixed mode/owner of'} ${c.path}${c.backup ? ` (original kept in ${c.backup})` : ''}`,
        ),
  )
  for (const s of specs) h.fileStates?.delete(s.path)
  const changed: string[] = []
  for (const c of changes) {
    if (c.result === 'unchanged') continue
    changed.push(c.path)
    if (c.diff) h.diffs.push(c.diff)
    const spec = specs.find((s) => s.path === c.path)!
    if (!c.contentChanged) continue
    for (const f of spec.follow) {
      if ('restart' in f) h.restart.add(f.restart)
      else if ('daemonReload' in f) h.daemonReload = true
    }
  }

  return changed
}

export interface Step {
  /** What the change log says. */
  what: string
  cmd: string
}

/**
 * Runs systemd steps in one round trip (recording each as a change), preceded by
 * `systemctl daemon-reload` when a unit or drop-in changed; then, in a live run only, `after`
 * (waiting for the unit to come up), also when there was no step.
 */
export async function systemd(
  ctx: RunContext,
  h: HostRun,
  steps: Step[],
  opts: {timeoutMs?: number; after?: () => Promise<void>} = {},
): Promise<void> {
  const all = h.daemonReload ? [{what: 'systemctl daemon-reload', cmd: 'systemctl daemon-reload'}, ...steps] : steps
  h.daemonReload = false
  await ctx.wet(
    h,
    all.map((s) => s.what),
    async () => {
      if (all.length > 0) await h.remote.run(all.map((s) => s.cmd).join(' && '), {timeoutMs: opts.timeoutMs})
      await opts.after?.()
    },
  )
}

/** `systemctl enable UNIT` when the facts say it is not enabled. */
export function enableStep(unit: string, enabled: string): Step[] {
  return enabled === 'enabled' ? [] : [{what: `systemctl enable ${unit}`, cmd: `systemctl enable ${unit}`}]
}

/** Starts a unit without waiting for it (Type=notify units wait for their peers or leases). */
export function startStep(unit: string): Step {
  return {
    what: `start ${unit}`,
    cmd: `{ systemctl reset-failed ${unit} 2>/dev/null || true; } && systemctl start --no-block ${unit}`,
  }
}

/** A unit's state from the facts, in systemctl's words. */
export function unitState(u: UnitState): {active: string; enabled: string; result?: string} {
  return {active: u.activeState || 'unknown', enabled: u.unitFileState ?? 'unknown', result: u.result}
}

/**
 * `systemctl reset-failed UNIT` for a unit found `failed` (e.g. `start-limit-hit`: docker.service
 * allows 3 starts a minute, and a start or restart is refused until the failed state is reset),
 * recorded in the change list with the reason.
 */
export function resetFailedStep(unit: string, st: {active: string; result?: string}): Step[] {
  if (st.active !== 'failed') return []
  return [
    {
      what: `systemctl reset-failed ${unit} (it was failed${st.result ? `: ${st.result}` : ''})`,
      cmd: `systemctl reset-failed ${unit}`,
    },
  ]
}

/** Polls `check` until it returns true or the deadline passes; stops (throws) after a stop signal. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 300): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    throwIfInterrupted()
    if (Date.now() >= deadline) return false
    await sleep(intervalMs)
  }
}

export function byPrefix(specs: FileSpec[], ...prefixes: string[]): FileSpec[] {
  return specs.filter((s) => prefixes.some((p) => s.path.startsWith(p)))
}
