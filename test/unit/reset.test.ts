import {describe, expect, it} from 'vitest'

import type {HostFacts} from '../../src/host/facts.js'
import type {UnitState} from '../../src/host/units.js'
import type {Cluster} from '../../src/inventory/model.js'

import {quorum} from '../../src/cluster/etcdctl.js'
import {parseLeaseListing as parseLeases} from '../../src/cluster/leases.js'
import {splitRule} from '../../src/host/iptables.js'
import {parseRoutes} from '../../src/host/net.js'
import {commentOutSwap, selinuxDisabled} from '../../src/init/preflight.js'
import {withHostsBlock} from '../../src/render/index.js'
import {DOCKER_DEFAULT_POOLS, poolsDropIn} from '../../src/reset/docker.js'
import {
  checkMemberReset,
  isMemberNotFound,
  leasesOf,
  parseLeaderEndpoints,
  parseMemberList,
} from '../../src/reset/etcd.js'
import {parseResetFacts, type ResetFacts} from '../../src/reset/facts.js'
import {describeOp, iptablesCleanup, iptablesScript} from '../../src/reset/iptables.js'
import {
  type HostResetPlan,
  leftoverRoutes,
  planHostReset,
  type PlanInput,
  removableDir,
  undoTextEdit,
} from '../../src/reset/plan.js'
import {clusterFrom, sampleFacts, threeMastersTwoNodes} from './helpers.js'

/** The lab's topology: 3 etcd masters, 2 flannel nodes, network 10.244.0.0/16 over vxlan. */
const cluster: Cluster = clusterFrom(threeMastersTwoNodes('10.211.3'))
const host = (name: string) => cluster.hosts.find((h) => h.name === name)!

/** `iptables -S` of a converged lab node (flanneld 0.26 stand-in, docker 20.10, kflan's drop-in). */
const NODE_FILTER = `-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-ISOLATION-STAGE-2
-N DOCKER-USER
-N FLANNEL-FWD
-A FORWARD -d 10.244.0.0/16 -j ACCEPT
-A FORWARD -s 10.244.0.0/16 -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A DOCKER-USER -j RETURN
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`
const NODE_NAT = `-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-N DOCKER
-N FLANNEL-POSTRTG
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.32.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`

/** The reset facts script's output on that node. */
const NODE_OUT = `
@@kflan:state@@
exists=1

@@kflan:kflan-files@@
F\t/etc/hosts\t-\t644\t-\t0\t-\tB
F\t/etc/modules-load.d/kflan.conf\t-\t644\t-\t0\tM\t-
F\t/etc/sysctl.d/99-kflan.conf\t-\t644\t-\t0\tM\t-
F\t/etc/systemd/system/docker.service.d/10-kflan-flannel.conf\t-\t644\t-\t0\tM\t-
F\t/etc/systemd/system/flanneld.service\t-\t644\t-\t0\tM\t-
F\t/opt/flannel/bin/flanneld\t-\t755\t-\t0\tM\t-
F\t/opt/flannel/bin/mk-docker-opts.sh\t-\t755\t-\t0\tM\t-
F\t/opt/flannel/ssl/ca.pem\t-\t644\t-\t0\tM\t-
F\t/opt/flannel/ssl/flanneld-key.pem\t-\t600\t-\t0\tM\t-
F\t/opt/flannel/ssl/flanneld.pem\t-\t644\t-\t0\tM\t-

@@kflan:iptables-filter@@
${NODE_FILTER}

@@kflan:iptables-filter--rc@@
0

@@kflan:iptables-nat@@
${NODE_NAT}

@@kflan:iptables-nat--rc@@
0

@@kflan:routes@@
#text
default via 10.211.3.1 dev eth0
10.211.3.0/24 dev eth0 proto kernel scope link src 10.211.3.21
10.244.32.0/24 dev docker0 proto kernel scope link src 10.244.32.1 linkdown
10.244.83.0/24 via 10.244.83.0 dev flannel.1 onlink

@@kflan:run@@
/run/flannel/subnet.env
/run/flannel/docker

@@kflan:daemon-json@@

@@kflan:reset-dropin@@

@@kflan:wants@@
/etc/systemd/system/multi-user.target.wants/flanneld.service

@@kflan:end@@
`

const NOTHING_OUT = `
@@kflan:state@@

@@kflan:kflan-files@@

@@kflan:iptables-filter@@
-P INPUT ACCEPT
-P FORWARD DROP
-A FORWARD -j DOCKER-USER

@@kflan:iptables-filter--rc@@
0

@@kflan:iptables-nat@@
-P POSTROUTING ACCEPT
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE

@@kflan:iptables-nat--rc@@
0

@@kflan:routes@@
#text
default via 10.211.3.1 dev eth0
172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown

@@kflan:run@@

@@kflan:daemon-json@@

@@kflan:reset-dropin@@

@@kflan:wants@@

@@kflan:end@@
`

const running: UnitState = {
  loadState: 'loaded',
  activeState: 'active',
  unitFileState: 'enabled',
  exists: true,
  active: true,
}

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return sampleFacts({
    hostname: 'n1',
    docker: {
      installed: true,
      dockerdPath: '/usr/sbin/dockerd',
      execStart: '/usr/sbin/dockerd -H fd://',
      unit: {...running, dropInPaths: []},
    },
    listening: [],
    interfaces: [
      {name: 'eth0', addresses: [{family: 'inet', address: '10.211.3.21', prefixLen: 24}]},
      {name: 'docker0', addresses: [{family: 'inet', address: '172.17.0.1', prefixLen: 16}]},
    ],
    iptables: {present: true, forwardPolicy: 'DROP'},
    tools: {},
    ...over,
  })
}

/** A lab node after `kflan init`: flanneld running, docker0 on the lease, flannel.1 up. */
const convergedNode = (): HostFacts =>
  facts({
    flanneld: {unit: running},
    interfaces: [
      {name: 'eth0', addresses: [{family: 'inet', address: '10.211.3.21', prefixLen: 24}]},
      {name: 'docker0', addresses: [{family: 'inet', address: '10.244.32.1', prefixLen: 24}]},
      {name: 'flannel.1', addresses: [{family: 'inet', address: '10.244.32.0', prefixLen: 32}]},
    ],
  })

function plan(name: string, f: HostFacts, reset: ResetFacts, over: Partial<PlanInput> = {}): HostResetPlan {
  return planHostReset({
    cluster,
    host: host(name),
    facts: f,
    reset,
    texts: new Map(),
    options: {purgeData: false},
    ...over,
  })
}

describe('reset facts', () => {
  it("parses kflan's bookkeeping, iptables, routes and runtime files", () => {
    const r = parseResetFacts(cluster, NODE_OUT)
    expect(r.stateDir).toBe(true)
    expect([...r.files.keys()]).toContain('/opt/flannel/bin/flanneld')
    expect(r.files.get('/etc/hosts')).toMatchObject({exists: true, managed: false, hasBackup: true, mode: 0o644})
    expect(r.files.get('/opt/flannel/ssl/flanneld-key.pem')).toMatchObject({
      exists: true,
      managed: true,
      hasBackup: false,
      mode: 0o600,
    })
    expect(r.iptables?.filter).toContain('-N FLANNEL-FWD')
    expect(r.runFiles).toEqual(['/run/flannel/subnet.env', '/run/flannel/docker'])
    expect(r.dockerDaemonJson).toEqual({bip: false, pools: false})
    expect(r.wants).toEqual(['/etc/systemd/system/multi-user.target.wants/flanneld.service'])
  })

  it("reads docker's daemon.json settings that forbid the matching flags, and refuses a truncated output", () => {
    const withJson = NODE_OUT.replace('@@kflan:daemon-json@@\n', '@@kflan:daemon-json@@\n{"bip": "10.9.0.1/24"}\n')
    expect(parseResetFacts(cluster, withJson).dockerDaemonJson).toEqual({bip: true, pools: false})
    expect(() => parseResetFacts(cluster, NODE_OUT.replace('@@kflan:end@@', ''))).toThrow(/incomplete/)
  })
})

describe('iptables cleanup', () => {
  it('splits rules the way iptables prints them', () => {
    expect(splitRule('-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD')).toEqual([
      '-A',
      'FORWARD',
      '-m',
      'comment',
      '--comment',
      'flanneld forward',
      '-j',
      'FLANNEL-FWD',
    ])
    expect(splitRule(String.raw`-A X -m comment --comment "a \"b\"" -j RETURN`)).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'a "b"',
      '-j',
      'RETURN',
    ])
  })

  it("takes out flanneld's chains and jumps and kflan's FORWARD rules, and nothing of docker's", () => {
    const ops = iptablesCleanup(NODE_FILTER.split('\n'), NODE_NAT.split('\n'), '10.244.0.0/16')
    expect(ops.map(describeOp)).toEqual([
      'iptables -D FORWARD -d 10.244.0.0/16 -j ACCEPT',
      'iptables -D FORWARD -s 10.244.0.0/16 -j ACCEPT',
      "iptables -D FORWARD -m comment --comment 'flanneld forward' -j FLANNEL-FWD",
      "iptables -t nat -D POSTROUTING -m comment --comment 'flanneld masq' -j FLANNEL-POSTRTG",
      'iptables -F FLANNEL-FWD && iptables -X FLANNEL-FWD',
      'iptables -t nat -F FLANNEL-POSTRTG && iptables -t nat -X FLANNEL-POSTRTG',
    ])
  })

  it("recognises flannel < 0.17's rules without comments and docker's masquerade for a flannel docker0", () => {
    const nat = [
      '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
      '-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
      '-A POSTROUTING -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
      '-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.32.0/24 -j RETURN',
      '-A POSTROUTING ! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE',
      '-A POSTROUTING -s 10.244.32.0/24 ! -o docker0 -j MASQUERADE',
      '-A POSTROUTING -s 10.9.0.0/16 -d 10.9.0.0/16 -j RETURN',
      '-A POSTROUTING -s 10.244.0.0/16 -o eth1 -j MASQUERADE',
    ]
    const ops = iptablesCleanup([], nat, '10.244.0.0/16')
    expect(ops.map((o) => (o.kind === 'delete' ? o.args.join(' ') : o.chain))).toEqual([
      '-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN',
      '-s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully',
      '! -s 10.244.0.0/16 -d 10.244.32.0/24 -j RETURN',
      '! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE',
      '-s 10.244.32.0/24 ! -o docker0 -j MASQUERADE',
    ])
  })

  it('deletes repeatedly (duplicates) and warns instead of failing on a chain still referenced', () => {
    const s = iptablesScript(iptablesCleanup(NODE_FILTER.split('\n'), [], '10.244.0.0/16'))
    expect(s).toContain(
      "while [ $n -lt 32 ] && iptables -w -t filter -C FORWARD -m comment --comment 'flanneld forward' -j FLANNEL-FWD",
    )
    expect(s).toContain(
      "echo 'warn: iptables chain FLANNEL-FWD (filter) is still referenced by another rule; left in place'",
    )
  })
})

describe("undoing kflan's text edits", () => {
  const original = '127.0.0.1\tlocalhost\n127.0.1.1\tn1\n'

  it('gives back the original when nothing else changed', () => {
    expect(undoTextEdit('/etc/hosts', withHostsBlock(original, cluster), original)).toBe(original)
    const fstab = 'UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n'
    expect(undoTextEdit('/etc/fstab', commentOutSwap(fstab), fstab)).toBe(fstab)
    const sel = 'SELINUX=enforcing\nSELINUXTYPE=targeted\n'
    expect(undoTextEdit('/etc/selinux/config', selinuxDisabled(sel), sel)).toBe(sel)
    expect(
      undoTextEdit('/etc/selinux/config', selinuxDisabled('SELINUXTYPE=targeted\n'), 'SELINUXTYPE=targeted\n'),
    ).toBe('SELINUXTYPE=targeted\n')
  })

  it('keeps what others added after kflan', () => {
    const edited = `${withHostsBlock(original, cluster)}10.0.0.9 added-later\n`
    expect(undoTextEdit('/etc/hosts', edited, original)).toBe(`${original}10.0.0.9 added-later\n`)
    expect(undoTextEdit('/etc/motd', 'x', 'y')).toBeUndefined()
  })
})

describe('the reset plan of a host', () => {
  it('a converged node: flanneld, lease traces, drop-in, iptables, flannel.1, docker back to its pools, files', () => {
    const p = plan('n1', convergedNode(), parseResetFacts(cluster, NODE_OUT))
    expect(p.flanneld).toBe(true)
    expect(p.flannelTraces).toBe(true)
    expect(p.dropIn).toEqual({path: '/etc/systemd/system/docker.service.d/10-kflan-flannel.conf', action: 'remove'})
    expect(p.docker).toEqual({action: 'restart', pools: true, why: "without kflan's drop-in"})
    expect(p.dockerOnFlannel).toBe('10.244.32.1/24')
    expect(p.links).toEqual(['flannel.1'])
    expect(p.routes).toEqual([])
    expect(p.iptables).toHaveLength(6)
    expect(p.runFiles).toEqual(['/run/flannel/subnet.env', '/run/flannel/docker'])
    expect(p.etcd).toBe(false)
    expect(p.purgeData).toBeUndefined()
    expect(p.files.map((f) => `${f.action} ${f.path}`)).toEqual([
      'restore /etc/hosts',
      'remove /etc/modules-load.d/kflan.conf',
      'remove /etc/sysctl.d/99-kflan.conf',
      'remove /etc/systemd/system/flanneld.service',
      'remove /opt/flannel/bin/flanneld',
      'remove /opt/flannel/bin/mk-docker-opts.sh',
      'remove /opt/flannel/ssl/ca.pem',
      'remove /opt/flannel/ssl/flanneld-key.pem',
      'remove /opt/flannel/ssl/flanneld.pem',
    ])
    expect(p.dirs).toEqual([
      '/etc/systemd/system/docker.service.d',
      '/opt/flannel/bin',
      '/opt/flannel/ssl',
      '/opt/flannel',
      '/run/flannel',
    ])
    expect(p.daemonReload).toBe(true)
    expect(p.wants).toEqual([]) // systemctl disable takes the link with the unit
    expect(p.stateDir).toBe(true)
    expect(p.empty).toBe(false)
  })

  it('an etcd member: stop etcd; its data only with --purge-data', () => {
    const out = NODE_OUT.replace(
      /@@kflan:kflan-files@@\n[^@]*/,
      '@@kflan:kflan-files@@\nF\t/etc/systemd/system/etcd.service\t-\t644\t-\t0\tM\t-\nF\t/opt/etcd/bin/etcd\t-\t755\t-\t0\tM\t-\n\n',
    ).replace(/@@kflan:run@@\n[^@]*/, '@@kflan:run@@\n\n')
    const f = facts({
      etcd: {dataDir: '/var/lib/etcd/default.etcd', exists: true, nonEmpty: true, hasMember: true, unit: running},
    })
    const keep = plan('m1', f, parseResetFacts(cluster, out))
    expect(keep.etcd).toBe(true)
    expect(keep.purgeData).toBeUndefined()
    expect(keep.dirs).toEqual(['/opt/etcd/bin', '/opt/etcd'])
    const purge = plan('m1', f, parseResetFacts(cluster, out), {options: {purgeData: true}})
    expect(purge.purgeData).toBe('/var/lib/etcd/default.etcd')
    expect(purge.dirs).toEqual(['/opt/etcd/bin', '/var/lib/etcd', '/opt/etcd'])
  })

  it('a host kflan left nothing on: an empty plan (a second reset does nothing)', () => {
    const p = plan('n1', facts(), parseResetFacts(cluster, NOTHING_OUT))
    expect(p.empty).toBe(true)
    expect(p.docker).toEqual({action: 'none'})
    expect(p.iptables).toEqual([])
  })

  it('keeps later edits of /etc/hosts instead of restoring a stale backup', () => {
    const original = '127.0.0.1 localhost\n'
    const current = `${withHostsBlock(original, cluster)}10.0.0.9 later\n`
    const p = plan('n1', convergedNode(), parseResetFacts(cluster, NODE_OUT), {
      texts: new Map([['/etc/hosts', {current: Buffer.from(current), original: Buffer.from(original)}]]),
    })
    const op = p.files.find((f) => f.path === '/etc/hosts')!
    expect(op.action).toBe('rewrite')
    expect(op.content?.toString()).toBe(`${original}10.0.0.9 later\n`)
    const same = plan('n1', convergedNode(), parseResetFacts(cluster, NODE_OUT), {
      texts: new Map([
        ['/etc/hosts', {current: Buffer.from(withHostsBlock(original, cluster)), original: Buffer.from(original)}],
      ]),
    })
    expect(same.files.find((f) => f.path === '/etc/hosts')?.action).toBe('restore')
  })

  it('docker: no pools flag when daemon.json sets bip; left stopped when it was stopped and disabled', () => {
    const r = {...parseResetFacts(cluster, NODE_OUT), dockerDaemonJson: {bip: true, pools: false}}
    expect(plan('n1', convergedNode(), r).docker).toEqual({
      action: 'restart',
      pools: false,
      why: "without kflan's drop-in",
    })
    const stopped = convergedNode()
    stopped.docker = {
      ...stopped.docker,
      unit: {...stopped.docker.unit, active: false, activeState: 'inactive', unitFileState: 'disabled'},
    }
    expect(plan('n1', stopped, parseResetFacts(cluster, NODE_OUT)).docker).toEqual({
      action: 'leave-stopped',
      deleteBridge: true,
    })
  })

  it('a docker0 on docker\'s own default pool is not "on flannel", even when the flannel network contains it', () => {
    // The guides' example uses 172.17.0.0/16 for flannel, docker's own default pool.
    const c = clusterFrom(`cluster: ex
hosts: [{name: n1, address: 10.0.0.21}]
roles: {masters: [n1], nodes: [n1]}
etcd: {version: 3.4.23, tarball: e.tgz}
flannel: {version: 0.26.1, tarball: f.tgz, network: 172.17.0.0/16}
`)
    const p = planHostReset({
      cluster: c,
      host: c.hosts[0],
      facts: facts(),
      reset: parseResetFacts(cluster, NOTHING_OUT),
      texts: new Map(),
      options: {purgeData: false},
    })
    expect(p.dockerOnFlannel).toBeUndefined()
    expect(p.empty).toBe(true)
  })

  it("host-gw leaves routes to the other hosts' subnets; vxlan's go with the device", () => {
    const routes = parseRoutes(
      [
        '#text',
        '10.244.5.0/24 via 10.211.3.22 dev eth0',
        '10.244.32.0/24 dev docker0 proto kernel scope link src 10.244.32.1',
        '10.244.83.0/24 via 10.244.83.0 dev flannel.1 onlink',
        '10.9.0.0/24 via 10.211.3.1 dev eth0',
      ].join('\n'),
    )
    expect(leftoverRoutes(cluster, routes, ['flannel.1'])).toEqual(['10.244.5.0/24 dev eth0'])
  })

  it('never removes system directories', () => {
    expect(
      ['/opt', '/usr/local', '/usr/local/bin', '/etc/systemd/system', '/var/lib', '/'].filter(removableDir),
    ).toEqual([])
    expect(['/opt/etcd', '/opt/flannel/bin', '/run/flannel', '/var/lib/etcd'].every(removableDir)).toBe(true)
  })
})

describe('etcd during a reset', () => {
  // `etcdctl member list -w json` (etcd 3.4/3.5 shape: 64-bit IDs as JSON numbers, empty fields left out).
  const list = `{"header":{"cluster_id":5341224225792870368,"member_id":1742028434370136904,"raft_term":10},"members":[{"ID":1742028434370136904,"name":"lab-m1","peerURLs":["https://10.211.3.11:2380"],"clientURLs":["https://10.211.3.11:2379"]},{"ID":6736831721286124887,"name":"lab-m3","peerURLs":["https://10.211.3.13:2380"],"clientURLs":["https://10.211.3.13:2379"]},{"ID":10432279881035836457,"name":"lab-m2","peerURLs":["https://10.211.3.12:2380"],"clientURLs":["https://10.211.3.12:2379"]},{"ID":7357692527561507835,"peerURLs":["https://10.211.3.14:2380"]}]}
`
  const members = parseMemberList(list)!
  const all = new Set(['https://10.211.3.11:2379', 'https://10.211.3.12:2379', 'https://10.211.3.13:2379'])

  it('parses member list and endpoint status', () => {
    expect(members.map((m) => `${m.id} ${m.name || '-'} ${m.name ? 'started' : 'unstarted'}`)).toEqual([
      '182ceda1a3430b48 lab-m1 started',
      '5d7e08c1dad7c557 lab-m3 started',
      '90c6e7477a986c29 lab-m2 started',
      '661bc65effd983fb - unstarted',
    ])
    expect(
      parseLeaderEndpoints(
        'https://10.211.3.11:2379, 182ceda1a3430b48, 3.4.23, 33 kB, false, false, 10, 34, 34, \nhttps://10.211.3.12:2379, 90c6e7477a986c29, 3.4.23, 37 kB, true, false, 10, 34, 34, \n',
      ),
    ).toEqual(['https://10.211.3.12:2379'])
  })

  it('lets one member go only while the others keep quorum', () => {
    const three = members.slice(0, 3)
    expect(quorum(3)).toBe(2)
    expect(checkMemberReset(three, all, {name: 'lab-m3', peerUrl: 'https://10.211.3.13:2380'}, false)).toMatchObject({
      ok: true,
      othersUp: 2,
      total: 3,
    })
    const m2down = new Set(['https://10.211.3.11:2379', 'https://10.211.3.13:2379'])
    expect(checkMemberReset(three, m2down, {name: 'lab-m3', peerUrl: 'https://10.211.3.13:2380'}, false)).toMatchObject(
      {ok: false, message: 'stopping lab-m3 leaves 1 of 3 members up; etcd needs 2 for quorum'},
    )
    // Removing m3 leaves a 2-member cluster that needs both: m2 must be up.
    expect(checkMemberReset(three, m2down, {name: 'lab-m3', peerUrl: 'https://10.211.3.13:2380'}, true)).toMatchObject({
      ok: false,
    })
    expect(checkMemberReset(three, all, {name: 'lab-m3', peerUrl: 'https://10.211.3.13:2380'}, true)).toMatchObject({
      ok: true,
      member: {id: '5d7e08c1dad7c557'},
    })
    expect(
      checkMemberReset(three.slice(0, 1), all, {name: 'lab-m1', peerUrl: 'https://10.211.3.11:2380'}, false),
    ).toMatchObject({ok: false, message: /only etcd member/})
    expect(checkMemberReset(three, all, {name: 'other', peerUrl: 'https://10.9.9.9:2380'}, false)).toEqual({
      ok: true,
      othersUp: 3,
      total: 3,
    })
  })

  it("finds the hosts' leases by the address flanneld registered", () => {
    const leases = parseLeases(`/coreos.com/network/subnets/10.244.5.0-24
{"PublicIP":"10.211.3.22","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:57:ba:ef:df:35"}}
/coreos.com/network/subnets/10.244.91.0-24
{"PublicIP":"10.211.3.21","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"62:16:61:ba:bc:1a"}}
`)
    expect(leasesOf(leases, [host('n2')]).map((x) => `${x.host.name} ${x.lease.subnet}`)).toEqual(['n2 10.244.5.0/24'])
    expect(leasesOf(leases, [host('m1')])).toEqual([])
  })
})

describe('docker leaving the flannel subnet', () => {
  it("starts once with docker's default pools, the unit's own ExecStart kept", () => {
    const d = poolsDropIn('/usr/sbin/dockerd -H fd:// $DOCKER_OPTS')
    expect(d).toContain(
      'ExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS --default-address-pool base=172.17.0.0/16,size=16 ',
    )
    expect(d.match(/--default-address-pool /g)).toHaveLength(DOCKER_DEFAULT_POOLS.length)
  })
})

describe('isMemberNotFound', () => {
  it("matches etcd's answer to removing an ID not in the member list, nothing else", () => {
    expect(isMemberNotFound('Error: etcdserver: member not found')).toBe(true)
    expect(isMemberNotFound('Error: etcdserver: unhealthy cluster')).toBe(false)
    expect(isMemberNotFound('')).toBe(false)
  })
})
