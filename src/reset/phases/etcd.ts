/** etcd: stopped and disabled on the members being reset, followers at once, then the leader. */
import type {ResetState} from '../state.js'

import {type ClusterPhase, HostFailure, type HostRun} from '../../engine/context.js'
import {PhaseFailedError} from '../../engine/runner.js'
import {clientUrl} from '../../inventory/model.js'
import {leaderEndpoint} from '../etcd.js'

export function etcdPhase(state: ResetState): ClusterPhase {
  return {
    kind: 'cluster',
    name: 'etcd',
    title: 'stop etcd',
    async runCluster(ctx) {
      const members = ctx.targets.filter((h) => state.plan(h).etcd)
      if (members.length === 0) return
      // The leader last: followers stop at once, then the leader finds no peer to hand over to.
      const via = members.length > 1 ? await state.etcdVia(ctx) : null
      const leaderUrl = via ? await leaderEndpoint(ctx.cluster, via).catch(() => undefined) : undefined
      const leader = members.find((h) => clientUrl(ctx.cluster, h.host) === leaderUrl)
      const stop = (h: HostRun) =>
        ctx.wet(h, 'stop and disable etcd', () =>
          h.remote.run('systemctl disable --now etcd && { systemctl reset-failed etcd 2>/dev/null || true; }', {
            timeoutMs: 120_000,
          }),
        )
      const failures: HostFailure[] = []
      const wave = async (hs: HostRun[]) => {
        const res = await Promise.allSettled(hs.map(stop))
        for (const [i, r] of res.entries())
          if (r.status === 'rejected') failures.push(new HostFailure(hs[i].host.name, 'etcd', r.reason))
      }

      await wave(members.filter((h) => h !== leader))
      if (leader) await wave([leader])
      if (failures.length > 0) throw new PhaseFailedError('etcd', failures)
    },
  }
}
