/**
 * The doctor's etcd reads, as background command probes run on a member: endpoint health and
 * status of members (each asked on its own endpoint, so a dead one cannot delay another), and the
 * cluster reads (member list, alarms, flannel's keys through v3 and v2) on one member.
 */
import type {ClusterReads, EtcdView} from './types.js'

import {type EtcdBounds, etcdctl, etcdctlV2, MEMBER_LIST} from '../cluster/etcdctl.js'
import {leaseListCommand} from '../cluster/leases.js'
import {commandProbe, type Probe, type RunOut} from '../host/probe.js'
import {type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {shq} from '../remote/shell.js'

/**
 * etcdctl bounds for the doctor: a dead member must not hold the run for long, so 1/5 of
 * `timeouts.etcdRequest` to connect and 2/5 in all (1s and 2s by default).
 */
const doctorBounds = (c: Cluster): EtcdBounds => ({
  dialMs: c.timeouts.etcdRequest / 5,
  commandMs: (c.timeouts.etcdRequest * 2) / 5,
})

/** `endpoint health` and `endpoint status` of `members`, each on its own endpoint. */
export function endpointProbes(c: Cluster, members: Host[]): Record<string, Probe<RunOut | undefined>> {
  const all = etcdMembers(c)
  const out: Record<string, Probe<RunOut | undefined>> = {}
  const bounds = doctorBounds(c)
  for (const m of members) {
    const i = all.findIndex((x) => x.name === m.name)
    out[`eh-${i}`] = commandProbe(`eh-${i}`, etcdctl(c, 'endpoint health -w json', [m], bounds))
    out[`es-${i}`] = commandProbe(`es-${i}`, etcdctl(c, 'endpoint status -w json', [m], bounds))
  }

  return out
}

/**
 * The cluster reads, asked of every endpoint (etcdctl fails over when one is down); serializable
 * reads answer from a member's own store, so config and leases stay readable without quorum.
 */
export function readProbes(c: Cluster): Record<string, Probe<RunOut | undefined>> {
  const p = c.flannel.prefix
  const bounds = doctorBounds(c)
  const out: Record<string, Probe<RunOut | undefined>> = {
    members: commandProbe('members', etcdctl(c, MEMBER_LIST, undefined, bounds)),
    alarms: commandProbe('alarms', etcdctl(c, 'alarm list', undefined, bounds)),
    keys3: commandProbe('keys3', etcdctl(c, `get ${shq(`${p}/`)} --prefix -w json --consistency=s`, undefined, bounds)),
  }
  for (const [i, m] of etcdMembers(c).entries())
    out[`cfg2-${i}`] = commandProbe(`cfg2-${i}`, etcdctlV2(c, `--no-sync get ${shq(`${p}/config`)}`, [m], bounds))
  if (c.flannel.etcdApi === 'v2') out.leases2 = commandProbe('leases2', leaseListCommand(c, {local: true}))
  return out
}

/** The endpoint probes' results → per member name (probes not run are left out). */
export function endpointsOf(c: Cluster, r: Record<string, RunOut | undefined>): EtcdView['endpoints'] {
  const out: EtcdView['endpoints'] = {}
  for (const [i, m] of etcdMembers(c).entries()) {
    const health = r[`eh-${i}`]
    const status = r[`es-${i}`]
    if (health || status)
      out[m.name] = {
        health: health ?? {stdout: '', stderr: '', rc: null},
        status: status ?? {stdout: '', stderr: '', rc: null},
      }
  }

  return out
}

/** The read probes' results → ClusterReads (undefined when they were not run). */
export function readsOf(c: Cluster, r: Record<string, RunOut | undefined>): ClusterReads | undefined {
  if (!r.members) return undefined
  const none = {stdout: '', stderr: '', rc: null}
  return {
    memberList: r.members,
    alarms: r.alarms ?? none,
    keysV3: r.keys3 ?? none,
    configV2: etcdMembers(c).flatMap((m, i) => (r[`cfg2-${i}`] ? [{member: m.name, run: r[`cfg2-${i}`]!}] : [])),
    leasesV2: r.leases2,
  }
}
