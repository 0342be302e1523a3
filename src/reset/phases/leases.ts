/**
 * leases: the reset hosts' flannel leases deleted from etcd while etcd still runs, through any
 * member that answers; the leases of hosts not in the inventory are named, not touched.
 */
import type {ClusterPhase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {deleteLease, leasesOf, readAllLeases} from '../etcd.js'

export function leasesPhase(state: ResetState): ClusterPhase {
  const s = state.settings
  return {
    kind: 'cluster',
    name: 'leases',
    title: "delete the hosts' flannel leases",
    async runCluster(ctx) {
      const c = ctx.cluster
      const traces = ctx.targets.filter((h) => state.plan(h).flannelTraces)
      // A host that never ran flanneld has no lease; a second reset must not go looking for etcd.
      if (traces.length === 0 && !ctx.targets.some((h) => h.host.roles.flannel)) return
      const via = await state.etcdVia(ctx)
      if (!via) {
        if (traces.length > 0 && !(s.purgeData && !s.single)) {
          ctx.warn(
            undefined,
            `etcd does not answer: the flannel lease of ${traces.map((h) => h.host.name).join(', ')} stays in etcd until it expires (24 h); flanneld on the same address takes it back`,
          )
        }

        return
      }

      const all = await readAllLeases(c, via)
      for (const {host, lease} of leasesOf(
        all,
        ctx.targets.map((h) => h.host),
      )) {
        const h = ctx.targets.find((x) => x.host.name === host.name)!
        await ctx.wet(h, `delete flannel lease ${lease.subnet} (${lease.key}) from etcd, through ${via.name}`, () =>
          deleteLease(c, via, lease.key),
        )
      }

      if (!s.single) {
        const foreign = all.filter((l) => !c.hosts.some((x) => x.address === l.publicIp))
        if (foreign.length > 0 && !s.purgeData) {
          ctx.warn(
            undefined,
            `${foreign.length} lease(s) of hosts not in the inventory stay in etcd: ${foreign.map((l) => `${l.subnet} (${l.publicIp ?? '?'})`).join(', ')}`,
          )
        }
      }
    },
  }
}
