/**
 * etcd for `kflan reset`: the flannel leases to delete and, when one member is reset alone,
 * whether the others keep quorum (pure parts first, then the calls through an etcd member).
 */
import {setTimeout as sleep} from 'node:timers/promises'

import type {Remote} from '../remote/ssh.js'

import {
  etcdctl,
  type EtcdMember,
  MEMBER_LIST,
  parseEndpointHealth,
  parseMemberList,
  quorum,
} from '../cluster/etcdctl.js'
import {type Lease, leaseDeleteCommand, readLeases} from '../cluster/leases.js'
import {type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {RemoteCommandError} from '../remote/errors.js'
import {shq} from '../remote/shell.js'

export {type EtcdMember, parseMemberList} from '../cluster/etcdctl.js'

export type MemberCheck =
  {ok: true; member?: EtcdMember; othersUp: number; total: number} | {ok: false; message: string; hint: string}

/**
 * Whether one member may be stopped (or removed, with --purge-data) while the others keep
 * quorum (pure). `healthy` holds the client URLs that answered `endpoint health`.
 */
export function checkMemberReset(
  members: EtcdMember[],
  healthy: Set<string>,
  target: {name: string; peerUrl: string},
  remove: boolean,
): MemberCheck {
  const member = members.find((m) => m.name === target.name || m.peerUrls.includes(target.peerUrl))
  const total = members.length
  if (!member)
    return {ok: true, othersUp: members.filter((m) => m.clientUrls.some((u) => healthy.has(u))).length, total}
  const others = members.filter((m) => m !== member)
  const othersUp = others.filter((m) => m.clientUrls.some((u) => healthy.has(u))).length
  if (total === 1) {
    return {
      ok: false,
      message: `${target.name} is the cluster's only etcd member: resetting it alone would take etcd away from every flanneld`,
      hint: 'reset every host (kflan reset without --host)',
    }
  }

  const need = remove ? quorum(total - 1) : quorum(total)
  if (othersUp < need) {
    const what = remove
      ? `removing ${target.name} leaves ${total - 1} members, of which ${othersUp} are up`
      : `stopping ${target.name} leaves ${othersUp} of ${total} members up`
    return {
      ok: false,
      message: `${what}; etcd needs ${need} for quorum`,
      hint: 'bring the other etcd members back first (`etcdctl endpoint health`), or reset every host (kflan reset without --host)',
    }
  }

  return {ok: true, member, othersUp, total}
}

/** The leases of the given hosts (by the PublicIP flanneld registered: the host's address). */
export function leasesOf(leases: Lease[], hosts: Host[]): {host: Host; lease: Lease}[] {
  const out: {host: Host; lease: Lease}[] = []
  for (const lease of leases) {
    const host = hosts.find((h) => h.address === lease.publicIp)
    if (host) out.push({host, lease})
  }

  return out
}

/** An etcd member reachable over SSH, with etcdctl and its own certificate (root in etcd: src/cluster/etcd-auth.ts). */
export interface EtcdVia {
  name: string
  remote: Remote
}

/** Leases in etcd, through the API flannel uses (v3 for flannel >= 0.18, v2 before). */
export async function readAllLeases(c: Cluster, via: EtcdVia): Promise<Lease[]> {
  return readLeases(c, via.remote)
}

export async function deleteLease(c: Cluster, via: EtcdVia, key: string): Promise<void> {
  await via.remote.run(leaseDeleteCommand(c, key))
}

/** Members and the client URLs that answer, or undefined when etcd does not answer through this member. */
export async function etcdStatus(
  c: Cluster,
  via: EtcdVia,
): Promise<{members: EtcdMember[]; healthy: Set<string>} | undefined> {
  const list = await via.remote.exec(etcdctl(c, MEMBER_LIST), {timeoutMs: 15_000})
  if (list.code !== 0) return undefined
  const members = parseMemberList(list.stdout)
  if (!members) return undefined
  const h = await via.remote.exec(etcdctl(c, 'endpoint health -w json'), {timeoutMs: 15_000})
  const healthy = new Set(
    parseEndpointHealth(h.stdout)
      .filter((e) => e.health)
      .map((e) => e.endpoint),
  )
  return {members, healthy}
}

/**
 * `member remove`, asked of the other members only: a member that is removed stops itself, so an
 * etcdctl that reached it may get an error for a removal that took place. "member not found" on a
 * later try therefore means done. etcd's strict reconfiguration check counts only peers connected
 * for 5 s (HealthInterval): right after a member (re)started it answers "unhealthy cluster", so
 * that is retried for a while.
 */
export async function removeMember(
  c: Cluster,
  via: EtcdVia,
  member: {id: string; name: string},
  timeoutMs = 30_000,
): Promise<void> {
  const others = etcdMembers(c).filter((m) => m.name !== member.name)
  const cmd = etcdctl(c, `member remove ${shq(member.id)}`, others.length > 0 ? others : undefined)
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; ; attempt++) {
    const r = await via.remote.exec(cmd, {timeoutMs: 20_000})
    if (r.code === 0 || (attempt > 0 && isMemberNotFound(r.stderr))) return
    const retry = /unhealthy cluster|not enough started members|unavailable|deadline exceeded|server stopped/i
    if (!retry.test(r.stderr) || Date.now() >= deadline) {
      // One last try: done if the member is gone by now, else its error is the one reported.
      const last = await via.remote.exec(cmd, {timeoutMs: 20_000})
      if (last.code === 0 || isMemberNotFound(last.stderr)) return
      throw new RemoteCommandError({
        host: via.name,
        command: cmd,
        code: last.code,
        stderr: last.stderr,
        stdout: last.stdout,
        timedOut: last.timedOut,
      })
    }

    await sleep(1000)
  }
}

/** etcd's answer to `member remove` of an ID not in the member list. */
export const isMemberNotFound = (stderr: string): boolean => /member not found|member .* not found/i.test(stderr)

/** Parses `etcdctl endpoint status -w simple` (pure): the endpoints that are raft leader. */
export function parseLeaderEndpoints(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.split(',').map((x) => x.trim()))
    .filter((f) => f.length >= 5 && /^https?:\/\//.test(f[0]) && f[4] === 'true')
    .map((f) => f[0])
}

/**
 * The client URL of the current leader, if etcd answers. Stopping the leader last keeps a
 * shutdown quick: a leader that stops while its peers stop too waits ~7 s for a leadership
 * transfer that cannot happen.
 */
export async function leaderEndpoint(c: Cluster, via: EtcdVia): Promise<string | undefined> {
  const r = await via.remote.exec(etcdctl(c, 'endpoint status -w simple'), {timeoutMs: 15_000})
  return parseLeaderEndpoints(r.stdout)[0]
}
