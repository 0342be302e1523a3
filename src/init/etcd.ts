import type {HostPhase, HostRun, RunContext} from '../engine/context.js'

import {ROOT} from '../cluster/etcd-auth.js'
import {
  etcdctl,
  type EtcdMember,
  MEMBER_LIST,
  parseEndpointHealth,
  parseInitialCluster,
  parseMemberList,
} from '../cluster/etcdctl.js'
import {KflanError} from '../errors.js'
/**
 * etcd: config and unit on every member; members that are down are started together (the first
 * member of a new cluster blocks until its peers come up), members whose files changed are
 * restarted one at a time while the others keep quorum; then wait for a healthy TLS cluster.
 */
import {clientUrl, etcdMembers, type Host, peerUrl} from '../inventory/model.js'
import {unitJournal} from '../remote/journal.js'
import {shq} from '../remote/shell.js'
import {envValue} from '../render/escape.js'
import {etcdPaths} from '../render/paths.js'
import {syncAuth} from './auth.js'
import {applyFiles, desiredFiles, enableStep, startStep, systemd, unitState, waitFor} from './common.js'

export const etcdPhase: HostPhase = {
  kind: 'hosts',
  name: 'etcd',
  title: 'configure etcd',
  clusterTitle: 'start etcd and wait for a healthy cluster',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd),

  async runHost(ctx, h) {
    const p = etcdPaths(ctx.cluster)
    await applyFiles(
      ctx,
      h,
      desiredFiles(ctx, h).filter((f) => f.path === p.conf || f.path === p.unit),
    )
    const st = unitState(h.facts.etcd.unit) // as found before this run touched it
    await systemd(ctx, h, enableStep('etcd', st.enabled))
    h.etcdActive = st.active === 'active'
  },

  async runCluster(ctx) {
    const members = this.hosts(ctx)
    // A member that has data (or runs) belongs to a cluster that already exists; one with neither
    // is new. On a first run every member is new and they bootstrap together; later, new members
    // join the running cluster one at a time (etcd's runtime reconfiguration).
    const known = members.filter((h) => h.etcdActive || h.facts.etcd.hasMember)
    const bootstrap = known.length === 0
    const joining = bootstrap ? [] : members.filter((h) => !known.includes(h))
    const running = members.filter((h) => h.etcdActive)
    if (running.length > 0 && joining.length + known.length > running.length) {
      // A member with data that the running cluster no longer lists would never become healthy.
      const list = await memberList(ctx, running[0], running)
      const strays = known.filter((h) => !list.some((m) => m.peerUrls.includes(peerUrl(ctx.cluster, h.host))))
      if (strays.length > 0) {
        throw new KflanError(
          `${strays.map((h) => h.host.name).join(', ')}: etcd data in ${ctx.cluster.etcd.dataDir}, but the running cluster does not list ${strays.length === 1 ? 'it' : 'them'} as a member`,
          {
            hint: `the member was removed from the cluster: delete its data (\`kflan reset -i INVENTORY --host ${strays[0].host.name} --purge-data\`), then run init again to add it back`,
          },
        )
      }
    }

    const down = (bootstrap ? members : known).filter((h) => !h.etcdActive)
    const changed = known.filter((h) => h.etcdActive && h.restart.has('etcd'))
    // Start every stopped member at once, without waiting on each: a new cluster's members
    // only become ready when enough peers are up.
    await Promise.all(down.map((h) => systemd(ctx, h, [startStep('etcd')])))
    for (const h of down) h.restart.delete('etcd')
    // Waiting for health follows a change: a dry run started nothing (wet with nothing to record).
    const healthy = (hs: HostRun[]) => ctx.wet(undefined, [], () => waitHealthy(ctx, hs))
    const live = bootstrap ? members : [...known]
    if (down.length > 0 || joining.length > 0) await healthy(live)
    for (const h of joining) {
      // The live run records member add, the join file and the start as it makes them.
      await ctx.wet(
        h,
        'add to the running etcd cluster (member add), then start etcd',
        async () => {
          await joinMember(ctx, h, live)
          live.push(h)
          await waitHealthy(ctx, live)
        },
        {summary: true},
      )
    }

    for (const h of changed) {
      await ctx.wet(
        h,
        'restart etcd (one member at a time)',
        async () => {
          await ctx.wet(h, 'restart etcd', () =>
            h.remote.run('systemctl restart etcd', {timeoutMs: ctx.cluster.timeouts.etcdStart}),
          )
          h.restart.delete('etcd')
          await waitHealthy(ctx, members)
        },
        {summary: true},
      )
    }

    if (down.length === 0 && changed.length === 0 && joining.length === 0) await healthy(members)
  },
}

/** The cluster's members as a running member sees them (an added, never started one has no name). */
async function memberList(ctx: RunContext, via: HostRun, endpoints: HostRun[]): Promise<EtcdMember[]> {
  const cmd = etcdctl(
    ctx.cluster,
    MEMBER_LIST,
    endpoints.map((x) => x.host),
  )
  const list = parseMemberList((await via.remote.run(cmd)).stdout)
  if (!list)
    throw new KflanError(`${via.host.name}: cannot parse \`etcdctl ${MEMBER_LIST}\``, {
      hint: `run \`etcdctl ${MEMBER_LIST}\` on ${via.host.name} by hand`,
    })
  return list
}

/**
 * `etcdctl member add`, retried while etcd refuses it as "unhealthy cluster": with the default
 * strict reconfiguration check, the leader adds a member only once every current member has been
 * connected for a while, which lags behind the endpoints answering health checks.
 */
async function memberAdd(ctx: RunContext, via: HostRun, live: HostRun[], h: HostRun, url: string): Promise<string> {
  const cmd = etcdctl(
    ctx.cluster,
    `member add ${shq(h.host.name)} --peer-urls=${shq(url)}`,
    live.map((x) => x.host),
  )
  let last = ''
  let out = ''
  const ok = await waitFor(
    async () => {
      const r = await via.remote.exec(cmd, {timeoutMs: 15_000})
      out = r.stdout
      if (r.code === 0) return true
      last = r.stderr.trim()
      if (/unhealthy cluster|too many learner|not ready/i.test(last)) return false
      throw new KflanError(`member add ${h.host.name} failed on ${via.host.name}: ${last}`, {
        hint: 'see `etcdctl member list` on a running member',
      })
    },
    30_000,
    1000,
  )
  if (!ok)
    throw new KflanError(`etcd kept refusing to add ${h.host.name}: ${last}`, {
      hint: 'check that every current member is healthy (`kflan doctor`) and run init again',
    })
  return out
}

/**
 * Adds a member to the running cluster and starts it with the initial cluster state "existing"
 * (written to the unit's optional join file, read by etcd on its first start only).
 */
async function joinMember(ctx: RunContext, h: HostRun, live: HostRun[]): Promise<void> {
  const c = ctx.cluster
  const via = live[0]
  const list = await memberList(ctx, via, live)
  const url = peerUrl(c, h.host)
  let printed: string | undefined
  if (!list.some((m) => m.peerUrls.includes(url))) {
    // With etcd auth on, kflan's calls through the new member use its certificate's CN: its user
    // must exist before it starts (the auth phase, after this one, would be too late), and must be
    // added before `member add`, while the cluster still has quorum (a 1-member cluster that lists
    // a second, not yet started member has none until it starts).
    await syncAuth(
      ctx,
      via,
      {users: new Map([[h.host.name, [ROOT]]]), roles: new Map()},
      {enable: false, endpoints: live},
    )
    const out = await ctx.wet(h, `member add ${h.host.name} (${url}) through ${via.host.name}`, () =>
      memberAdd(ctx, via, live, h, url),
    )
    // The cluster as `member add` prints it: listing it again would need a quorum that a cluster
    // of one running member plus the one just added does not have until the new one starts
    // (etcd 3.5's member list is linearizable and times out).
    printed = parseInitialCluster(out ?? '')
  }

  // Every member the cluster knows, named (an added member that never started has no name yet).
  const initial =
    printed === undefined
      ? list
          .map((m) => {
            const host = etcdMembers(c).find((x) => m.peerUrls.includes(peerUrl(c, x)))
            const name = m.name || host?.name
            return name ? `${name}=${m.peerUrls.join(',')}` : undefined
          })
          .filter((x): x is string => x !== undefined)
      : printed.split(',')
  const p = etcdPaths(c)
  // Names and URLs come from the running cluster: escaped like every rendered environment value.
  const content = `# Written by kflan when ${h.host.name} joined the running cluster.\nETCD_INITIAL_CLUSTER_STATE="existing"\nETCD_INITIAL_CLUSTER="${envValue('etcd-join.conf: ETCD_INITIAL_CLUSTER', initial.join(','))}"\n`
  await applyFiles(ctx, h, [{path: p.join, mode: 0o644, content, secret: false, follow: []}])
  await systemd(ctx, h, [startStep('etcd')])
  h.restart.delete('etcd')
}

/** Waits until every member's endpoint is healthy over TLS; the timeout names the unhealthy ones. */
export async function waitHealthy(
  ctx: RunContext,
  members: HostRun[],
  timeoutMs = ctx.cluster.timeouts.etcdStart,
): Promise<void> {
  const c = ctx.cluster
  const expected: Host[] = members.map((m) => m.host)
  let last = new Map<string, string>()
  let via = 0
  const ok = await waitFor(
    async () => {
      const runner = members[via % members.length]
      const r = await runner.remote.exec(etcdctl(c, 'endpoint health -w json', expected), {timeoutMs: 15_000})
      const health = parseEndpointHealth(r.stdout)
      last = new Map()
      for (const m of expected) {
        const e = health.find((x) => x.endpoint === clientUrl(c, m))
        if (!e?.health) last.set(m.name, e?.error ?? (r.stderr.trim().split('\n').at(-1) || 'no answer'))
      }

      if (health.length === 0) via++ // this member cannot even run etcdctl: ask another
      return last.size === 0
    },
    timeoutMs,
    500,
  )
  if (!ok) {
    const lines = [...last].map(([n, e]) => `${n}: ${e}`).join('; ')
    // The client only sees timeouts; the member's own journal says why (a full disk, a data dir
    // it cannot write, a bad certificate).
    const journals = await Promise.all(
      [...last.keys()].map(async (n) => {
        const m = members.find((x) => x.host.name === n)
        const tail = m ? await unitJournal(m.remote, 'etcd') : []
        return tail.length > 0
          ? `\n  ${n} journalctl -u etcd (last lines):\n${tail.map((l) => `    ${l}`).join('\n')}`
          : ''
      }),
    )
    throw new KflanError(`etcd is not healthy after ${timeoutMs / 1000}s: ${lines}${journals.join('')}`, {
      hint: `check \`journalctl -u etcd\` on ${[...last.keys()].join(', ')}: disk space and the data dir, certificate SANs, peer port ${c.etcd.peerPort}/tcp reachable, clocks`,
    })
  }
}
