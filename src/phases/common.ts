/** Helpers every phase uses: writing rendered files and acting on what changed. */
import {renderHost, type FileSpec} from '../render/index.js'
import {pkiFiles} from '../cluster-pki.js'
import {writeFiles} from '../remote/files.js'
import type {HostRun, RunContext} from './context.js'

const rendered = new WeakMap<HostRun, FileSpec[]>()

/** The host's rendered files, once per run (facts supply docker's ExecStart). */
export function desiredFiles(ctx: RunContext, h: HostRun): FileSpec[] {
  let files = rendered.get(h)
  if (!files) {
    files = renderHost(ctx.cluster, h.host, {pki: pkiFiles(ctx.stateDir), dockerExecStart: vendorExecStart(h.facts.docker.execStart)})
    rendered.set(h, files)
  }
  return files
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
  const changes = await writeFiles(h.remote, specs, {dryRun: ctx.dryRun})
  const changed: string[] = []
  for (const c of changes) {
    if (c.result === 'unchanged') continue
    changed.push(c.path)
    const what = c.contentChanged ? c.result : 'fixed mode/owner of'
    h.changes.push(`${ctx.dryRun ? 'would write' : what} ${c.path}${c.backup ? ` (original kept in ${c.backup})` : ''}`)
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

/** `systemctl daemon-reload` once, when a unit or drop-in changed. */
export async function daemonReload(ctx: RunContext, h: HostRun): Promise<void> {
  if (!h.daemonReload) return
  await ctx.wet(h, 'systemctl daemon-reload', () => h.remote.run('systemctl daemon-reload'))
  h.daemonReload = false
}

/** State of systemd units in one round trip. */
export async function unitStates(h: HostRun, units: string[]): Promise<Map<string, {active: string; enabled: string}>> {
  const script = units.map((u) => `printf '%s %s %s\\n' ${u} "$(systemctl is-active ${u} 2>/dev/null)" "$(systemctl is-enabled ${u} 2>/dev/null)"`).join('\n')
  const r = await h.remote.run('sh -s', {stdin: script + '\n'})
  const out = new Map<string, {active: string; enabled: string}>()
  for (const line of r.stdout.split('\n')) {
    const [u, active = '', enabled = ''] = line.trim().split(/\s+/)
    if (u) out.set(u, {active: active || 'unknown', enabled: enabled || 'unknown'})
  }
  return out
}

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 300): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export function byPrefix(specs: FileSpec[], ...prefixes: string[]): FileSpec[] {
  return specs.filter((s) => prefixes.some((p) => s.path.startsWith(p)))
}
