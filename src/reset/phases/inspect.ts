/**
 * inspect: each host's reset facts and the files kflan edited, turned into the host's plan (pure,
 * src/reset/plan.ts); with --host on an etcd member, the check that the others keep quorum.
 */
import type {HostPhase} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {HostFailure} from '../../engine/context.js'
import {PhaseFailedError} from '../../engine/runner.js'
import {KflanError} from '../../errors.js'
import {peerUrl} from '../../inventory/model.js'
import {readFiles} from '../../remote/files.js'
import {statePaths} from '../../remote/state-dir.js'
import {checkMemberReset, etcdStatus} from '../etcd.js'
import {gatherResetFacts} from '../facts.js'
import {TEXT_EDITED} from '../file-ops.js'
import {planHostReset} from '../plan.js'

export function inspectPhase(state: ResetState): HostPhase {
  const s = state.settings
  return {
    kind: 'hosts',
    name: 'inspect',
    title: 'read what kflan left on each host',
    clusterTitle: 'check that etcd keeps quorum',
    hosts: (ctx) => ctx.targets,
    async runHost(ctx, h) {
      const c = ctx.cluster
      const reset = await gatherResetFacts(h.remote, c)
      const {files} = reset
      const {backup} = statePaths()
      const texts = new Map<string, {current?: Buffer; original?: Buffer}>()
      const edited = TEXT_EDITED.filter((p) => files.get(p)?.hasBackup)
      if (edited.length > 0) {
        const got = await readFiles(
          h.remote,
          edited.flatMap((p) => [p, `${backup}${p}`]),
        )
        for (const p of edited) texts.set(p, {current: got.get(p), original: got.get(`${backup}${p}`)})
      }

      state.plans.set(
        h.host.name,
        planHostReset({cluster: c, host: h.host, facts: h.facts, reset, texts, options: {purgeData: s.purgeData}}),
      )
    },
    async runCluster(ctx) {
      if (!s.single) return
      const h = ctx.targets[0]
      const plan = state.plan(h)
      if (!h.host.roles.etcd && !plan.etcd) return
      // One member of a running cluster: the others must keep quorum.
      const c = ctx.cluster
      const via = await state.etcdVia(ctx)
      const status = via ? await etcdStatus(c, via) : undefined
      if (!via || !status) {
        ctx.warn(
          h,
          `etcd does not answer: cannot check that the other members keep quorum${s.purgeData ? `, nor remove ${h.host.name} from the member list` : ''}`,
        )
        return
      }

      const check = checkMemberReset(
        status.members,
        status.healthy,
        {name: h.host.name, peerUrl: peerUrl(c, h.host)},
        s.purgeData,
      )
      if (!check.ok) {
        const refusal = new KflanError(`refusing to reset ${h.host.name} alone: ${check.message}`, {hint: check.hint})
        throw new PhaseFailedError('inspect', [new HostFailure(h.host.name, 'inspect', refusal)])
      }

      if (!check.member) {
        ctx.warn(
          h,
          `not in the etcd member list (${status.members.map((m) => m.name || m.id).join(', ')}): no membership to change`,
        )
        return
      }

      if (s.purgeData) {
        state.memberToRemove = {member: check.member, via}
        ctx.warn(
          h,
          `leaves the etcd member list (${check.member.id}) and its data is deleted: the cluster goes on with ${check.total - 1} members; \`kflan init\` adds it back as a new member (member add, then start)`,
        )
      } else {
        ctx.warn(
          h,
          `stays in \`etcdctl member list\`, stopped, its data kept in ${c.etcd.dataDir}: the cluster runs on ${check.othersUp} of ${check.total} members until \`kflan init\` starts it again. To drop it for good: \`etcdctl member remove ${check.member.id}\`, or reset it with --purge-data`,
        )
      }
    },
  }
}
