/**
 * etcd (pure): the unit on every member, endpoint health over TLS with quorum arithmetic, the
 * member list against the inventory, the leader, alarms, and the database size against its quota.
 *
 * Each member checks its own endpoint (a client connecting to the inventory address, so TLS and
 * SANs are exercised); a member that cannot be reached over SSH is checked from another member.
 * Cluster reads (member list, alarms) come from the first member that answered.
 */
import {memberIdHex, parseMemberList, quorum} from '../cluster/etcdctl.js'
import {clientUrl, etcdMembers, peerUrl} from '../inventory/model.js'
import {type EndpointState, endpointStates} from './etcd-endpoints.js'
import {bytes} from './etcd-output.js'
import {type CheckResult, type DoctorInput, listing, plural, readsOf, resultFor, stateOf} from './types.js'

/** etcd's default --quota-backend-bytes (2 GiB). */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3
export const DB_WARN_RATIO = 0.8

export function etcdChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const members = etcdMembers(c)
  if (members.length === 0) return []
  const out: CheckResult[] = []
  const eps = endpointStates(input)
  const known = eps.filter((e) => e.healthy !== undefined)
  const healthy = eps.filter((e) => e.healthy === true)
  const need = quorum(members.length)
  const quorumKept = healthy.length >= need
  const reads = readsOf(input)
  const unitOf = (name: string) => stateOf(input, name)?.data?.units.etcd

  // etcd.unit, per member.
  for (const m of members) {
    const u = unitOf(m.name)
    if (!u) continue
    const r = resultFor('etcd.unit', m.name)
    if (u.activeState === 'active') {
      out.push(r.ok(`etcd.service is active (${u.subState ?? ''})`))
      continue
    }

    const what =
      u.loadState === 'not-found'
        ? 'etcd.service is not installed'
        : `etcd.service is ${u.activeState}${u.subState ? ` (${u.subState})` : ''}`
    const hint =
      u.loadState === 'not-found'
        ? 'run `kflan init`'
        : `run \`systemctl start etcd\` on ${m.name} and read \`journalctl -u etcd -n 50\``
    out.push(
      quorumKept
        ? r.warn(`${what}; the cluster keeps quorum (${healthy.length} of ${members.length} healthy)`, hint)
        : r.fail(`${what}; the cluster has lost quorum`, hint),
    )
  }

  // etcd.health
  if (known.length > 0) {
    const r = resultFor('etcd.health')
    const bad = eps.filter((e) => e.healthy !== true)
    const describe = (e: EndpointState) => {
      if (e.healthy === undefined) return `${e.member.name} (not checked: no host could ask it)`
      const u = unitOf(e.member.name)
      const down = u && u.activeState !== 'active' ? `etcd.service ${u.activeState}` : undefined
      return `${e.member.name} (${[down, e.error].filter(Boolean).join(': ')})`
    }

    const isDown = (e: EndpointState) =>
      unitOf(e.member.name)?.activeState !== undefined && unitOf(e.member.name)?.activeState !== 'active'
    const isTls = (e: EndpointState) => /x509|tls:/.test(e.error ?? '')
    const down = bad.filter(isDown).map((e) => e.member.name)
    const tls = bad.filter((e) => !isDown(e) && isTls(e)).map((e) => e.member.name)
    const rest = bad.filter((e) => !isDown(e) && !isTls(e)).map((e) => e.member.name)
    const fixes = [
      down.length > 0 ? `start etcd on ${listing(down)} (\`systemctl start etcd\`, then \`journalctl -u etcd\`)` : '',
      tls.length > 0
        ? `${listing(tls)} ${tls.length === 1 ? 'runs' : 'run'}, but clients reject ${tls.length === 1 ? 'its' : 'their'} certificate: see certs.san / certs.chain (\`kflan init\` re-issues and rolls out certificates)`
        : '',
      rest.length > 0
        ? `read \`journalctl -u etcd\` on ${listing(rest)} and check that ${c.etcd.clientPort}/tcp is reachable`
        : '',
    ].filter(Boolean)
    const fix = fixes.join('; ')
    if (bad.length === 0)
      out.push(
        r.ok(`all ${members.length} members healthy over TLS (${members.map((m) => clientUrl(c, m)).join(', ')})`),
      )
    else if (quorumKept) {
      out.push(
        r.warn(
          `${plural(bad.length, 'member')} of ${members.length} unhealthy: ${bad.map(describe).join(', ')}; quorum kept (${healthy.length} healthy, ${need} needed)`,
          `one more failure loses quorum: ${fix}`,
        ),
      )
    } else {
      out.push(
        r.fail(
          `quorum lost: ${healthy.length} of ${members.length} members healthy, ${need} needed; unhealthy: ${bad.map(describe).join(', ')}`,
          `etcd accepts no writes: flanneld cannot renew leases and new nodes cannot join; ${fix}`,
        ),
      )
    }
  }

  // etcd.members
  const ml = reads?.reads.memberList.rc === 0 ? {run: reads.reads.memberList, from: reads.from} : undefined
  const idToName = new Map<string, string>()
  if (ml) {
    const r = resultFor('etcd.members')
    const list = parseMemberList(ml.run.stdout)
    if (list) {
      const problems: string[] = []
      for (const x of list) idToName.set(x.id, x.name || x.id)
      for (const m of members) {
        const x = list.find((y) => y.name === m.name)
        const want = peerUrl(c, m)
        if (!x) {
          const unstarted = list.find((y) => !y.name && y.peerUrls.includes(want))
          problems.push(unstarted ? `${m.name} was added (${want}) but never started` : `${m.name} is not a member`)
        } else if (x.peerUrls.join(',') !== want)
          problems.push(`${m.name} has peer URLs ${x.peerUrls.join(',') || '(none)'}, not ${want}`)
      }

      const extra = list.filter((y) => y.name && !members.some((m) => m.name === y.name))
      for (const y of extra)
        problems.push(`${y.name} (ID ${y.id}, ${y.peerUrls.join(',')}) is a member but not in the inventory`)
      out.push(
        problems.length === 0
          ? r.ok(`member list matches the inventory: ${members.map((m) => `${m.name}=${peerUrl(c, m)}`).join(', ')}`)
          : r.fail(
              `member list differs from the inventory: ${problems.join('; ')}`,
              extra.length > 0
                ? `remove members that should not be there (\`etcdctl member remove <hex ID>\`), or add them to the inventory`
                : '`kflan init` adds a member of the inventory that is missing from the running cluster (member add, then start)',
            ),
      )
    } else {
      out.push(r.warn(`cannot parse \`member list\` from ${ml.from}`, 'run `etcdctl member list -w json` by hand'))
    }
  }

  for (const e of eps) if (e.status?.memberId) idToName.set(memberIdHex(e.status.memberId), e.member.name)

  // etcd.leader
  const statuses = eps.filter((e) => e.status)
  if (statuses.length > 0) {
    const r = resultFor('etcd.leader')
    const leaders = [...new Set(statuses.map((e) => e.status!.leader).filter((x): x is string => x !== undefined))]
    const name = (id: string) => idToName.get(memberIdHex(id)) ?? `ID ${memberIdHex(id)}`
    const errs = [...new Set(statuses.flatMap((e) => e.status!.errors))]
    if (leaders.length === 0) {
      out.push(
        r.fail(
          `no leader${errs.length > 0 ? ` (${errs.join('; ')})` : ''}`,
          'a leader needs a majority of members up and able to reach each other on the peer port',
        ),
      )
    } else if (known.length > 0 && !quorumKept) {
      // A leader that lost its majority steps down within an election timeout; until then it
      // still claims leadership but can commit nothing.
      out.push(
        r.fail(
          `no leader able to commit: quorum lost (${statuses.map((e) => `${e.member.name} sees ${e.status!.leader ? name(e.status!.leader) : 'none'}`).join(', ')})`,
          'a leader needs a majority of members up and able to reach each other on the peer port',
        ),
      )
    } else if (leaders.length > 1) {
      out.push(
        r.warn(
          `members disagree on the leader: ${statuses.map((e) => `${e.member.name} sees ${e.status!.leader ? name(e.status!.leader) : 'none'}`).join(', ')}`,
          'an election may be in progress; run doctor again, and check the network between members if it persists',
        ),
      )
    } else {
      const noLeader = statuses.filter((e) => !e.status!.leader)
      const term = Math.max(...statuses.map((e) => e.status!.raftTerm ?? 0))
      const leader = leaders[0]
      if (!idToName.has(memberIdHex(leader)))
        out.push(
          r.warn(
            `the leader ${name(leader)} is not one of the members seen`,
            'compare `etcdctl member list` and `endpoint status`',
          ),
        )
      else if (noLeader.length > 0)
        out.push(
          r.warn(
            `leader ${name(leader)}, but ${listing(noLeader.map((e) => e.member.name))} ${noLeader.length === 1 ? 'sees' : 'see'} none`,
            'check the peer port between members',
          ),
        )
      else out.push(r.ok(`leader ${name(leader)} (raft term ${term}), seen by ${plural(statuses.length, 'member')}`))
    }
  }

  // etcd.alarms
  const al = reads?.reads.alarms.rc === 0 ? {run: reads.reads.alarms} : undefined
  if (al) {
    const r = resultFor('etcd.alarms')
    const alarms = al.run.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
    if (alarms.length === 0) out.push(r.ok('no alarms'))
    else {
      const shown = alarms.map((a) => {
        const m = /memberID:(\d+)\s+alarm:(\S+)/.exec(a)
        return m ? `${m[2]} on ${idToName.get(memberIdHex(m[1])) ?? `ID ${memberIdHex(m[1])}`}` : a
      })
      const nospace = alarms.some((a) => a.includes('NOSPACE'))
      out.push(
        r.fail(
          `alarms raised: ${shown.join(', ')}${nospace ? ' (etcd is read-only until the space is freed)' : ''}`,
          nospace
            ? 'free space: `etcdctl compact <revision>` then `etcdctl defrag` on every member, raise --quota-backend-bytes if needed, then `etcdctl alarm disarm`'
            : 'CORRUPT: stop the member, restore it from a healthy member (remove and re-add it), then `etcdctl alarm disarm`',
        ),
      )
    }
  }

  // etcd.db-size, per member.
  for (const e of eps) {
    const size = e.status?.dbSize
    if (size === undefined) continue
    const quota = stateOf(input, e.member.name)?.data?.etcd?.quotaBytes ?? DEFAULT_QUOTA_BYTES
    const ratio = size / quota
    const r = resultFor('etcd.db-size', e.member.name)
    const text = `database ${bytes(size)} of ${bytes(quota)} quota (${(ratio * 100).toFixed(ratio < 0.01 ? 2 : 0)}%)`
    const hint =
      'compact and defragment (`etcdctl compact <rev>`, `etcdctl defrag`), or raise --quota-backend-bytes; at 100% etcd raises NOSPACE and refuses writes'
    out.push(ratio >= 1 ? r.fail(text, hint) : ratio > DB_WARN_RATIO ? r.warn(text, hint) : r.ok(text))
  }

  return out
}
