/**
 * The run engine without hosts: the one record-or-run step (ctx.wet, ctx.wetPlanned, and init's
 * systemd() built on it) and the runner (host phases, cluster phases, failures across hosts).
 * A small in-memory Remote records the commands it is sent; nothing crosses SSH.
 */
import {describe, expect, it} from 'vitest'

import type {HostFacts} from '../../src/host/facts.js'
import type {ExecOptions, ExecResult, Remote} from '../../src/remote/ssh.js'

import {type HostRun, type Phase, RunContext} from '../../src/engine/context.js'
import {PhaseFailedError, runPhases} from '../../src/engine/runner.js'
import {systemd} from '../../src/init/common.js'
import {MemoryLogger} from '../../src/remote/logger.js'
import {clusterFrom, minimalInventory} from './helpers.js'

/** What the engine and the helpers under test use of a Remote: exec and run, recorded. */
class FakeRemote {
  readonly sent: string[] = []

  constructor(private readonly answer: (cmd: string) => Partial<ExecResult> = () => ({})) {}

  async exec(cmd: string, _opts: ExecOptions = {}): Promise<ExecResult> {
    this.sent.push(cmd)
    return {code: 0, stdout: '', stderr: '', durationMs: 0, ...this.answer(cmd)}
  }

  async run(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(cmd, opts)
    if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`)
    return r
  }
}

function setup(dryRun: boolean, answer?: (cmd: string) => Partial<ExecResult>) {
  const cluster = clusterFrom(minimalInventory())
  const remotes = new Map<string, FakeRemote>()
  const hosts: HostRun[] = cluster.hosts.map((host) => {
    const remote = new FakeRemote(answer)
    remotes.set(host.name, remote)
    return {
      host,
      remote: remote as unknown as Remote,
      facts: {} as HostFacts,
      changes: [],
      diffs: [],
      restart: new Set(),
      daemonReload: false,
    }
  })
  const logger = new MemoryLogger()
  const ctx = new RunContext(
    cluster,
    '/nonexistent-state',
    hosts,
    {dryRun, force: false, ignorePreflight: new Set(), concurrency: 4},
    logger,
  )
  const notes = () => logger.entries.filter((e) => e.entry.kind === 'note').map((e) => `${e.host} ${e.entry.message}`)
  return {ctx, hosts, remotes, notes, sent: (name: string) => remotes.get(name)!.sent}
}

describe('the record-or-run step (ctx.wet)', () => {
  it('runs the change in a live run, records it and logs it as a change', async () => {
    const {ctx, hosts, notes, sent} = setup(false)
    const h = hosts[0]
    const out = await ctx.wet(h, 'swapoff -a', () => h.remote.run('swapoff -a'))
    expect(out?.code).toBe(0)
    expect(sent('m1')).toEqual(['swapoff -a'])
    expect(h.changes).toEqual(['swapoff -a'])
    expect(notes()).toEqual(['m1 change: swapoff -a'])
    expect(ctx.changed).toBe(true)
  })

  it('only records the change in a dry run: nothing is sent, the result is undefined', async () => {
    const {ctx, hosts, notes, sent} = setup(true)
    const h = hosts[0]
    const out = await ctx.wet(h, 'swapoff -a', () => h.remote.run('swapoff -a'))
    expect(out).toBeUndefined()
    expect(sent('m1')).toEqual([])
    expect(h.changes).toEqual(['swapoff -a'])
    expect(notes()).toEqual(['m1 would: swapoff -a'])
  })

  it('records several changes made by one action, and runs the action once', async () => {
    for (const dryRun of [false, true]) {
      const {ctx, hosts, sent} = setup(dryRun)
      const h = hosts[1]
      await ctx.wet(h, ['delete rule A', 'delete rule B'], () => h.remote.run('sh -s'))
      expect(h.changes).toEqual(['delete rule A', 'delete rule B'])
      expect(sent('n1')).toEqual(dryRun ? [] : ['sh -s'])
    }
  })

  it('with nothing to record, runs only in a live run (what watches a change take effect)', async () => {
    for (const dryRun of [false, true]) {
      const {ctx, hosts, sent} = setup(dryRun)
      await ctx.wet(undefined, [], () => hosts[0].remote.exec('etcdctl endpoint health'))
      expect(sent('m1')).toEqual(dryRun ? [] : ['etcdctl endpoint health'])
      expect(ctx.changed).toBe(false)
    }
  })

  it('refuses a change that names no host', async () => {
    const {ctx} = setup(true)
    await expect(ctx.wet(undefined, 'restart etcd', async () => 0)).rejects.toThrow(/a change needs a host/)
  })

  it("records a summary in the plan only: a live run records fn's own changes instead", async () => {
    const plan = async (dryRun: boolean) => {
      const {ctx, hosts, sent} = setup(dryRun)
      const h = hosts[0]
      await ctx.wet(h, 'add users, then auth enable', () => ctx.wet(h, ['user add m1', 'auth enable'], async () => 0), {
        summary: true,
      })
      return {changes: h.changes, sent: sent('m1')}
    }

    expect(await plan(true)).toEqual({changes: ['add users, then auth enable'], sent: []})
    expect(await plan(false)).toEqual({changes: ['user add m1', 'auth enable'], sent: []})
  })

  it('gives a self-planning helper the run mode and records what it reports', async () => {
    for (const dryRun of [false, true]) {
      const {ctx, hosts} = setup(dryRun)
      const h = hosts[0]
      let mode: boolean | undefined
      const r = await ctx.wetPlanned(
        h,
        async (d) => {
          mode = d
          return ['/etc/a', '/etc/b']
        },
        (paths, d) => paths.map((p) => `${d ? 'would write' : 'created'} ${p}`),
      )
      expect(mode).toBe(dryRun)
      expect(r).toEqual(['/etc/a', '/etc/b'])
      expect(h.changes).toEqual(
        dryRun ? ['would write /etc/a', 'would write /etc/b'] : ['created /etc/a', 'created /etc/b'],
      )
    }
  })
})

/** A follow-up that only reads (what systemd()'s `after` gets). */
function readOn(h: HostRun, cmd: string): () => Promise<void> {
  return async () => {
    await h.remote.exec(cmd)
  }
}

/** A fake answer: the command `fail` exits 1. */
function failOnFail(cmd: string): Partial<ExecResult> {
  if (cmd === 'fail') return {code: 1, stderr: 'boom'}
  return {}
}

describe("init's systemd steps go through the step", () => {
  const steps = [
    {what: 'systemctl enable etcd', cmd: 'systemctl enable etcd'},
    {what: 'start etcd', cmd: 'systemctl start --no-block etcd'},
  ]

  it('sends every step in one round trip after daemon-reload, then the follow-up', async () => {
    const {ctx, hosts, sent} = setup(false)
    const h = hosts[0]
    h.daemonReload = true
    await systemd(ctx, h, steps, {after: readOn(h, 'systemctl is-active etcd')})
    expect(sent('m1')).toEqual([
      'systemctl daemon-reload && systemctl enable etcd && systemctl start --no-block etcd',
      'systemctl is-active etcd',
    ])
    expect(h.changes).toEqual(['systemctl daemon-reload', 'systemctl enable etcd', 'start etcd'])
    expect(h.daemonReload).toBe(false)
  })

  it('in a dry run records the same changes and sends nothing, follow-up included', async () => {
    const {ctx, hosts, sent} = setup(true)
    const h = hosts[0]
    h.daemonReload = true
    await systemd(ctx, h, steps, {after: readOn(h, 'systemctl is-active etcd')})
    expect(sent('m1')).toEqual([])
    expect(h.changes).toEqual(['systemctl daemon-reload', 'systemctl enable etcd', 'start etcd'])
  })

  it('with no step still runs the follow-up in a live run (a converged unit is read once more)', async () => {
    const {ctx, hosts, sent} = setup(false)
    await systemd(ctx, hosts[0], [], {
      after: readOn(hosts[0], 'cat /run/flannel/subnet.env'),
    })
    expect(sent('m1')).toEqual(['cat /run/flannel/subnet.env'])
    expect(hosts[0].changes).toEqual([])
  })
})

describe('the runner', () => {
  it('runs a host phase on every host it names, then its cluster part, then the next phase', async () => {
    const {ctx} = setup(false)
    const order: string[] = []
    const phases: Phase[] = [
      {
        kind: 'hosts',
        name: 'nodes',
        title: 'nodes',
        hosts: (c) => c.hosts.filter((h) => h.host.roles.flannel),
        async runHost(c, h) {
          order.push(`host ${h.host.name}`)
          await c.wet(h, 'restart flanneld', () => h.remote.run('systemctl restart flanneld'))
        },
        async runCluster() {
          order.push('nodes cluster')
        },
      },
      {
        kind: 'cluster',
        name: 'leases',
        title: 'leases',
        async runCluster() {
          order.push('leases')
        },
      },
    ]
    await runPhases(ctx, phases, {output: 'silent'})
    expect(order.slice(0, -2).sort()).toEqual(['host n1', 'host n2']) // m1 runs no flanneld in this inventory
    expect(order.slice(-2)).toEqual(['nodes cluster', 'leases'])
  })

  it('skips a host phase with no host and no cluster part; a cluster phase always runs', async () => {
    const {ctx} = setup(false)
    const ran: string[] = []
    await runPhases(
      ctx,
      [
        {
          kind: 'hosts',
          name: 'none',
          title: 'none',
          hosts: () => [],
          async runHost() {
            ran.push('none host')
          },
        },
        {
          kind: 'hosts',
          name: 'empty',
          title: 'empty',
          hosts: () => [],
          async runHost() {
            ran.push('empty host')
          },
          async runCluster() {
            ran.push('empty cluster')
          },
        },
        {
          kind: 'cluster',
          name: 'c',
          title: 'c',
          async runCluster() {
            ran.push('cluster')
          },
        },
      ],
      {output: 'silent'},
    )
    expect(ran).toEqual(['empty cluster', 'cluster'])
  })

  it('lets the other hosts finish a phase when one fails, then stops with every failure', async () => {
    const {ctx, hosts, sent} = setup(false, failOnFail)
    let later = false
    const phases: Phase[] = [
      {
        kind: 'hosts',
        name: 'step',
        title: 'step',
        hosts: (c) => c.hosts,
        async runHost(c, h) {
          await c.wet(h, 'do it', () => h.remote.run(h.host.name === 'n1' ? 'fail' : 'ok'))
        },
      },
      {
        kind: 'cluster',
        name: 'later',
        title: 'later',
        async runCluster() {
          later = true
        },
      },
    ]
    const error = await runPhases(ctx, phases, {output: 'silent'}).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(PhaseFailedError)
    const failed = error as PhaseFailedError
    expect(failed.phase).toBe('step')
    expect(failed.failures.map((f) => f.host)).toEqual(['n1'])
    expect(failed.message).toMatch(/^failed on 1 host in phase step:\n {2}- n1: fail: exit 1: boom/)
    for (const h of hosts) expect(sent(h.host.name), h.host.name).toEqual([h.host.name === 'n1' ? 'fail' : 'ok'])
    expect(later).toBe(false)
  })

  it("reports a cluster part's error as a failure of the phase on 'cluster'", async () => {
    const {ctx} = setup(false)
    const error = await runPhases(
      ctx,
      [
        {
          kind: 'cluster',
          name: 'etcd',
          title: 'etcd',
          async runCluster() {
            throw new Error('no quorum')
          },
        },
      ],
      {output: 'silent'},
    ).catch((error_: unknown) => error_)
    expect(error).toBeInstanceOf(PhaseFailedError)
    expect((error as PhaseFailedError).message).toBe('failed on 1 host in phase etcd:\n  - cluster: no quorum')
  })

  it('in a dry run the same phases plan every change and send no change', async () => {
    const {ctx, hosts, sent} = setup(true)
    await runPhases(
      ctx,
      [
        {
          kind: 'hosts',
          name: 'step',
          title: 'step',
          hosts: (c) => c.hosts,
          async runHost(c, h) {
            const r = await h.remote.exec('systemctl is-active flanneld') // a read stays a read
            if (r.stdout.trim() !== 'active')
              await c.wet(h, 'start flanneld', () => h.remote.run('systemctl start flanneld'))
          },
        },
      ],
      {output: 'silent'},
    )
    for (const h of hosts) {
      expect(sent(h.host.name)).toEqual(['systemctl is-active flanneld'])
      expect(h.changes).toEqual(['start flanneld'])
    }
  })
})
