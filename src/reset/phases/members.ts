/** members: --host --purge-data on an etcd member: `member remove` before its data goes (see inspect). */
import type {ClusterPhase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {removeMember} from '../etcd.js'

export function membersPhase(state: ResetState): ClusterPhase {
  return {
    kind: 'cluster',
    name: 'members',
    title: 'remove the etcd member',
    async runCluster(ctx) {
      const m = state.memberToRemove
      if (!m) return
      const h = ctx.targets[0]
      await ctx.wet(
        h,
        `remove ${m.member.name} (${m.member.id}) from the etcd member list, through ${m.via.name}`,
        () => removeMember(ctx.cluster, m.via, m.member),
      )
    },
  }
}
