/**
 * etcd: config and unit on every member; members that are down are started together (the first
 * member of a new cluster blocks until its peers come up), members whose files changed are
 * restarted one at a time while the others keep quorum; then wait for a healthy TLS cluster.
 */
import {etcdMembers, clientUrl} from '../inventory/model.js'
import {etcdctl, parseEndpointHealth} from '../etcdctl.js'
import {etcdPaths} from '../render/paths.js'
import {KflanError} from '../errors.js'
import type {HostRun, Phase, RunContext} from './context.js'
import {applyFiles, desiredFiles, enableStep, startStep, systemd, unitState, waitFor} from './common.js'

const HEALTH_TIMEOUT_MS = 60_000

export const etcdPhase: Phase = {
  name: 'etcd',
  title: 'etcd cluster',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd),

  async runHost(ctx, h) {
    const p = etcdPaths(ctx.cluster)
    await applyFiles(ctx, h, desiredFiles(ctx, h).filter((f) => f.path === p.conf || f.path === p.unit))
    const st = unitState(h.facts.etcd.unit) // as found before this run touched it
    await systemd(ctx, h, enableStep('etcd', st.enabled))
    h.etcdActive = st.active === 'active'
  },

  async runCluster(ctx) {
    const members = this.hosts(ctx)
    const down = members.filter((h) => !h.etcdActive)
    const changed = members.filter((h) => h.etcdActive && h.restart.has('etcd'))
    // Start every stopped member at once, without waiting on each: a new cluster's members
    // only become ready when enough peers are up.
    await Promise.all(
      down.map((h) =>
        systemd(ctx, h, [startStep('etcd')]),
      ),
    )
    for (const h of down) h.restart.delete('etcd')
    if (ctx.dryRun) {
      for (const h of changed) h.changes.push('restart etcd (one member at a time)')
      return
    }
    if (down.length > 0) await waitHealthy(ctx, members)
    for (const h of changed) {
      await ctx.wet(h, 'restart etcd', () => h.remote.run('systemctl restart etcd', {timeoutMs: HEALTH_TIMEOUT_MS}))
      h.restart.delete('etcd')
      await waitHealthy(ctx, members)
    }
    if (down.length === 0 && changed.length === 0) await waitHealthy(ctx, members)
  },
}

/** Waits until every member's endpoint is healthy over TLS; the timeout names the unhealthy ones. */
export async function waitHealthy(ctx: RunContext, members: HostRun[], timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
  const c = ctx.cluster
  let last = new Map<string, string>()
  let via = 0
  const ok = await waitFor(async () => {
    const runner = members[via % members.length]
    const r = await runner.remote.exec(etcdctl(c, 'endpoint health -w json'), {timeoutMs: 15_000})
    const health = parseEndpointHealth(r.stdout)
    last = new Map()
    for (const m of etcdMembers(c)) {
      const e = health.find((x) => x.endpoint === clientUrl(c, m))
      if (!e?.health) last.set(m.name, e?.error ?? (r.stderr.trim().split('\n').at(-1) || 'no answer'))
    }
    if (health.length === 0) via++ // this member cannot even run etcdctl: ask another
    return last.size === 0
  }, timeoutMs, 500)
  if (!ok) {
    const lines = [...last].map(([n, e]) => `${n}: ${e}`).join('; ')
    throw new KflanError(`etcd is not healthy after ${timeoutMs / 1000}s: ${lines}`, {
      hint: `check \`journalctl -u etcd\` on ${[...last.keys()].join(', ')}: certificate SANs, peer port ${c.etcd.peerPort}/tcp reachable, clocks`,
    })
  }
}

