/**
 * What the phases of one `kflan reset` share: the settings, each host's plan (made by the inspect
 * phase) and the etcd member to ask (found once, on demand).
 */
import type {HostRun, RunContext} from '../engine/context.js'
import type {EtcdMember, EtcdVia} from './etcd.js'
import type {HostResetPlan} from './plan.js'

import {etcdctl, parseEndpointHealth} from '../cluster/etcdctl.js'
import {etcdMembers} from '../inventory/model.js'
import {Remote} from '../remote/ssh.js'
import {targetFromHost} from '../remote/target.js'

export interface ResetSettings {
  purgeData: boolean
  /** --host: only this host is reset; the rest of the cluster keeps running. */
  single?: string
  knownHostsPath: string
  acceptNewHostKeys: boolean
}

export class ResetState {
  readonly plans = new Map<string, HostResetPlan>()
  /** etcd members connected only to ask etcd (not reset); closed by close(). */
  private readonly observers: Remote[] = []
  private via: EtcdVia | null | undefined
  /** --host --purge-data on an etcd member: removed from the member list before its data goes. */
  memberToRemove?: {member: EtcdMember; via: EtcdVia}

  constructor(readonly settings: ResetSettings) {}

  plan(h: HostRun): HostResetPlan {
    const p = this.plans.get(h.host.name)
    if (!p) throw new Error(`no reset plan for ${h.host.name}`)
    return p
  }

  /**
   * An etcd member that answers, with etcdctl and its own certificate (root in etcd): a target first
   * (etcd still runs there until the etcd phase), else another member connected on demand.
   * Unreachable members are skipped; null when none answers.
   */
  async etcdVia(ctx: RunContext): Promise<EtcdVia | null> {
    if (this.via !== undefined) return this.via
    const c = ctx.cluster
    const answers = async (remote: Remote) => {
      const r = await remote.exec(etcdctl(c, 'endpoint health -w json'), {timeoutMs: 15_000})
      return parseEndpointHealth(r.stdout).some((e) => e.health)
    }

    const targets = ctx.hosts.filter((h) => h.host.roles.etcd || h.facts.etcd.unit.exists)
    for (const h of targets) {
      if (await answers(h.remote).catch(() => false)) {
        this.via = {name: h.host.name, remote: h.remote}
        return this.via
      }
    }

    const connected = new Set(ctx.hosts.map((h) => h.host.name))
    for (const m of etcdMembers(c).filter((x) => !connected.has(x.name))) {
      let remote: Remote
      try {
        remote = await Remote.connect(targetFromHost(m), {
          knownHostsPath: this.settings.knownHostsPath,
          acceptNew: this.settings.acceptNewHostKeys,
          logger: ctx.logger,
        })
      } catch (error) {
        ctx.logger.log(m.name, {
          ts: new Date().toISOString(),
          kind: 'note',
          message: `not used to reach etcd: ${(error as Error).message}`,
        })
        continue
      }

      this.observers.push(remote)
      if (await answers(remote).catch(() => false)) {
        this.via = {name: m.name, remote}
        return this.via
      }
    }

    this.via = null
    return this.via
  }

  async close(): Promise<void> {
    await Promise.all(this.observers.map((r) => r.close().catch(() => undefined)))
  }
}
