/**
 * kflan doctor's gathering, pure: the scripts are valid sh and their helper functions work (run
 * locally with stand-ins), and real output captured from lab hosts parses into the data the checks
 * read.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

import {etcdctlError, parseEtcdJson, parseGetJson, specificError} from '../../src/doctor/etcd-output.js'
import {
  doctorScript,
  etcdSetting,
  followUpScript,
  keysScript,
  parseDoctorOutput,
  parseFirewalld,
  parsePingOutput,
  parseRoutes,
  parseVxlan,
  pingScript,
} from '../../src/doctor/gather.js'
import {readV2, readV3} from '../../src/doctor/network.js'
import {clusterFrom} from './helpers.js'

const c = clusterFrom(`cluster: lab
ssh: {user: root, identityFile: /dev/null}
hosts:
  - {name: lab-m1, address: 10.211.2.11}
  - {name: lab-m2, address: 10.211.2.12}
  - {name: lab-m3, address: 10.211.2.13}
  - {name: lab-n1, address: 10.211.2.21, interface: eth0}
  - {name: lab-n2, address: 10.211.2.22, interface: eth0}
roles:
  masters: [lab-m1, lab-m2, lab-m3]
  nodes: [lab-n1, lab-n2]
etcd: {version: 3.4.23, tarball: etcd.tgz}
flannel: {version: 0.26.1, tarball: flannel.tgz, network: 10.244.0.0/16}
`)
const m1 = c.hosts[0]
const n1 = c.hosts[3]

const work = mkdtempSync(join(tmpdir(), 'kflan-doctor-gather-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

const sh = (script: string, env: NodeJS.ProcessEnv = {}) =>
  execFileSync('sh', ['-c', script], {encoding: 'utf8', env: {...process.env, ...env}})

// Captured from lab-n1 (certificates shortened, JSON trimmed to the fields read).
const N1_OUT = `
@@kflan:swaps@@
Filename				Type		Size		Used		Priority

@@kflan:selinux@@

@@kflan:sysctl@@
net/ipv4/ip_forward=1
net/bridge/bridge-nf-call-iptables=1
bridge-dir=1

@@kflan:units@@
MainPID=0
Id=etcd.service
LoadState=not-found
ActiveState=inactive
SubState=dead
DropInPaths=

MainPID=14382
ExecStart={ path=/opt/flannel/bin/flanneld ; argv[]=/opt/flannel/bin/flanneld --etcd-prefix=/coreos.com/network --iface=eth0 ; ignore_errors=no ; start_time=[Sun 2026-11-22 12:12:18 UTC] ; stop_time=[n/a] ; pid=14382 ; code=(null) ; status=0/0 }
Id=flanneld.service
LoadState=loaded
ActiveState=active
SubState=running
DropInPaths=

MainPID=14508
ExecStart={ path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS ; ignore_errors=no ; start_time=[Sun 2026-11-22 12:12:19 UTC] ; stop_time=[n/a] ; pid=14508 ; code=(null) ; status=0/0 }
Id=docker.service
LoadState=loaded
ActiveState=active
SubState=running
DropInPaths=/etc/systemd/system/docker.service.d/10-kflan-flannel.conf

MainPID=0
Id=firewalld.service
LoadState=not-found
ActiveState=inactive
SubState=dead
DropInPaths=

@@kflan:file-0@@
present
CA

@@kflan:file-1@@
absent

@@kflan:file-2@@
present
FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.64.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true

@@kflan:file-3@@
present
[Service]
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_NETWORK_OPTIONS

@@kflan:addrs@@
[{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500,"operstate":"UP","address":"7e:f5:67:77:52:b9","addr_info":[{"family":"inet","local":"10.211.2.21","prefixlen":24,"scope":"global"}]},{"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER","UP"],"mtu":1450,"operstate":"DOWN","address":"02:42:b4:7b:6a:d6","addr_info":[{"family":"inet","local":"10.244.64.1","prefixlen":24,"scope":"global"}]}]

@@kflan:routes@@
[{"dst":"default","gateway":"10.211.2.1","dev":"eth0","flags":[]},{"dst":"10.244.5.0/24","gateway":"10.244.5.0","dev":"flannel.1","flags":["onlink"]}]

@@kflan:vxlan@@
[{"ifindex":4,"ifname":"flannel.1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"linkinfo":{"info_kind":"vxlan","info_data":{"id":1,"local":"10.211.2.21","link":"eth0","port_range":{"low":0,"high":0},"port":8472,"learning":false}}}]

@@kflan:dockerd@@
/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --bip=10.244.64.1/24 --ip-masq=false --mtu=1450 
@@kflan:iptables@@
-P INPUT ACCEPT
-P FORWARD DROP
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD

@@kflan:iptables--err@@

@@kflan:iptables--rc@@
0

@@kflan:firewalld@@
state=inactive

@@kflan:firewalld--err@@

@@kflan:firewalld--rc@@
0

@@kflan:end@@`

// Captured from lab-m1 doing the cluster reads, with a few faults edited in (swap, SELinux,
// ip_forward 0, no br_netfilter, no iptables, firewalld running, a larger quota).
const M1_OUT = `
@@kflan:swaps@@
Filename				Type		Size		Used		Priority
/swapfile                               file		8188		0		-2

@@kflan:selinux@@
getenforce=Permissive

@@kflan:sysctl@@
net/ipv4/ip_forward=0

@@kflan:units@@
MainPID=360
Id=etcd.service
LoadState=loaded
ActiveState=active
SubState=running
DropInPaths=

@@kflan:etcd-proc@@
arg /opt/etcd/bin/etcd
arg --cert-file=/opt/etcd/ssl/server.pem
arg --client-cert-auth
arg --quota-backend-bytes=8589934592
env ETCD_LISTEN_CLIENT_URLS=https://10.211.2.11:2379,https://127.0.0.1:2379

@@kflan:file-0@@
present
CA

@@kflan:eh-0@@
[{"endpoint":"https://10.211.2.11:2379","health":true,"took":"12.224585ms"}]

@@kflan:eh-0--err@@

@@kflan:eh-0--rc@@
0

@@kflan:es-0@@
[{"Endpoint":"https://10.211.2.11:2379","Status":{"header":{"cluster_id":5341224225792870368,"member_id":6380610312619252246,"revision":7,"raft_term":20},"version":"3.4.23","dbSize":32768,"leader":10488759157124456252,"raftIndex":99,"raftTerm":20,"raftAppliedIndex":99,"dbSizeInUse":20480}}]

@@kflan:es-0--err@@

@@kflan:es-0--rc@@
0

@@kflan:members@@
{"header":{"cluster_id":5341224225792870368,"member_id":6380610312619252246,"raft_term":20},"members":[{"ID":6380610312619252246,"name":"lab-m1","peerURLs":["https://10.211.2.11:2380"],"clientURLs":["https://10.211.2.11:2379"]},{"ID":10488759157124456252,"name":"lab-m3","peerURLs":["https://10.211.2.13:2380"],"clientURLs":["https://10.211.2.13:2379"]}]}

@@kflan:members--err@@

@@kflan:members--rc@@
0

@@kflan:alarms@@

@@kflan:alarms--err@@

@@kflan:alarms--rc@@
0

@@kflan:keys3@@
{"header":{"cluster_id":5341224225792870368,"member_id":10488759157124456252,"revision":7,"raft_term":20},"kvs":[{"key":"L2NvcmVvcy5jb20vbmV0d29yay9jb25maWc=","create_revision":6,"mod_revision":6,"version":1,"value":"eyJOZXR3b3JrIjoiMTAuMjQ0LjAuMC8xNiIsIlN1Ym5ldExlbiI6MjQsIlN1Ym5ldE1pbiI6IjEwLjI0NC4xLjAiLCJTdWJuZXRNYXgiOiIxMC4yNDQuMjU1LjAiLCJCYWNrZW5kIjp7IlR5cGUiOiJ2eGxhbiIsIlZOSSI6MSwiUG9ydCI6ODQ3Mn19"},{"key":"L2NvcmVvcy5jb20vbmV0d29yay9zdWJuZXRzLzEwLjI0NC41LjAtMjQ=","create_revision":4,"mod_revision":4,"version":1,"value":"eyJQdWJsaWNJUCI6IjEwLjIxMS4yLjIyIiwiUHVibGljSVB2NiI6bnVsbCwiQmFja2VuZFR5cGUiOiJ2eGxhbiIsIkJhY2tlbmREYXRhIjp7IlZOSSI6MSwiVnRlcE1BQyI6IjhlOmM3OmIxOmExOmUzOmM3In19","lease":6862538066477234950}],"count":2}

@@kflan:keys3--err@@

@@kflan:keys3--rc@@
0

@@kflan:cfg2-0@@

@@kflan:cfg2-0--err@@
Error:  client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint

@@kflan:cfg2-0--rc@@
4

@@kflan:iptables@@
#missing

@@kflan:iptables--err@@

@@kflan:iptables--rc@@
0

@@kflan:firewalld@@
state=active
public (active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  services: dhcpv6-client ssh etcd-client
  ports: 8472/udp
  protocols:

@@kflan:firewalld--err@@

@@kflan:firewalld--rc@@
0

@@kflan:end@@`

describe('doctor scripts', () => {
  it('are valid sh for every role, with and without the cluster reads', () => {
    for (const script of [
      doctorScript(c, m1, {reads: true}),
      doctorScript(c, m1),
      doctorScript(c, n1),
      followUpScript(c, {members: [c.hosts[1]], reads: true}),
      keysScript(['/a b/k.pem']),
      pingScript('10.244.64.1', [{address: '10.244.5.1'}]),
    ]) {
      const f = join(work, 'script.sh')
      writeFileSync(f, script)
      expect(() => execFileSync('sh', ['-n', f])).not.toThrow()
    }
  })

  it('put the etcd and firewall probes in the background and read each unit once', () => {
    const s = doctorScript(c, m1, {reads: true})
    expect(s.match(/systemctl show/g)).toHaveLength(1)
    expect(s).toMatch(/^j eh-0 'ETCDCTL_API=3 .*--endpoints=https:\/\/10\.211\.2\.11:2379 .*endpoint health -w json/m)
    expect(s).toMatch(
      /^j keys3 '.*--endpoints=https:\/\/10\.211\.2\.11:2379,https:\/\/10\.211\.2\.12:2379,https:\/\/10\.211\.2\.13:2379 .*get \/coreos\.com\/network\/ --prefix -w json --consistency=s/m,
    )
    // v2 is asked per member (only members with --enable-v2 answer), without the client's cluster sync.
    expect(s).toMatch(
      /^j cfg2-2 'ETCDCTL_API=2 .*--endpoints=https:\/\/10\.211\.2\.13:2379 .*--no-sync get \/coreos\.com\/network\/config'$/m,
    )
    expect(doctorScript(c, m1)).not.toContain('keys3')
    expect(doctorScript(c, n1)).not.toContain('etcdctl')
    expect(doctorScript(c, n1)).toContain('ip -j -d link show dev flannel.1')
  })

  it('unit(): a property of one unit from the single systemctl show', () => {
    const units = N1_OUT.split('@@kflan:units@@\n')[1].split('\n@@kflan:')[0]
    writeFileSync(join(work, 'units'), units)
    const fn = doctorScript(c, n1)
      .split('\n')
      .find((l) => l.startsWith('unit() {'))!
    expect(
      sh(
        `T=${work}; ${fn}\nunit docker.service MainPID; unit flanneld.service ActiveState; unit firewalld.service ActiveState; unit nope.service MainPID`,
      ),
    ).toBe('14508\nactive\ninactive\n')
  })

  it('pings run in parallel and report code and round-trip time', () => {
    const bin = join(work, 'bin')
    execFileSync('mkdir', ['-p', bin])
    writeFileSync(
      join(bin, 'ping'),
      `#!/bin/sh\nfor a; do t=$a; done\nif [ "$t" = 10.244.5.1 ]; then echo "rtt min/avg/max/mdev = 0.084/0.084/0.084/0.000 ms"; exit 0; fi\necho "1 packets transmitted, 0 received"; exit 1\n`,
    )
    chmodSync(join(bin, 'ping'), 0o755)
    const targets = [
      {target: 'lab-n2', address: '10.244.5.1'},
      {target: 'lab-n3', address: '10.244.9.1'},
    ]
    const out = sh(pingScript('10.244.64.1', targets), {PATH: `${bin}:${process.env.PATH}`})
    expect(parsePingOutput(out, targets)).toEqual([
      {target: 'lab-n2', address: '10.244.5.1', ok: true, rttMs: 0.084},
      {target: 'lab-n3', address: '10.244.9.1', ok: false, detail: 'no reply within 1 s'},
    ])
    expect(parsePingOutput('#no-ping\n', targets)[0].detail).toBe('ping is not installed on the source host')
  })

  it('keys come back in their own sections', () => {
    const k = join(work, 'k.pem')
    writeFileSync(k, '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n')
    const out = sh(keysScript([k, join(work, 'missing.pem')]))
    const d = parseDoctorOutput(c, n1, N1_OUT, out)
    // flanneld-key.pem is n1's only key: section key-0.
    expect(d.files['/opt/flannel/ssl/flanneld-key.pem']).toBe(
      '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----',
    )
  })
})

describe('parsing what the hosts said', () => {
  it('a flannel node', () => {
    const d = parseDoctorOutput(c, n1, N1_OUT, '', {skewMs: 12, uncertaintyMs: 3})
    expect(d.swaps).toEqual([])
    expect(d.selinux).toBeUndefined()
    expect([d.ipForward, d.bridgeNfCallIptables, d.bridgeDir]).toEqual(['1', '1', true])
    expect(d.units.flanneld).toMatchObject({load: 'loaded', active: 'active', sub: 'running', mainPid: 14_382})
    expect(d.units.docker).toMatchObject({
      mainPid: 14_508,
      dropIns: ['/etc/systemd/system/docker.service.d/10-kflan-flannel.conf'],
    })
    expect(d.units.docker!.execStart).toBe(
      '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS',
    )
    expect(d.units.etcd).toMatchObject({load: 'not-found', mainPid: 0})
    expect(d.files['/opt/flannel/ssl/ca.pem']).toBe('CA')
    expect(d.files['/opt/flannel/ssl/flanneld.pem']).toBeUndefined()
    expect(d.files['/run/flannel/subnet.env']).toContain('FLANNEL_SUBNET=10.244.64.1/24')
    expect(d.addrs.find((a) => a.name === 'docker0')).toMatchObject({
      mtu: 1450,
      addresses: [{family: 'inet', address: '10.244.64.1', prefixLen: 24}],
    })
    expect(d.routes[1]).toEqual({dst: '10.244.5.0/24', gateway: '10.244.5.0', dev: 'flannel.1', flags: ['onlink']})
    expect(d.vxlan).toEqual({
      name: 'flannel.1',
      mtu: 1450,
      up: true,
      kind: 'vxlan',
      vni: 1,
      local: '10.211.2.21',
      port: 8472,
    })
    expect(d.dockerCmdline).toContain('--bip=10.244.64.1/24')
    expect(d.iptables?.rules).toContain('-P FORWARD DROP')
    expect(d.firewalld).toEqual({state: 'inactive', ports: []})
    expect(d.clock).toEqual({skewMs: 12, uncertaintyMs: 3})
    expect(d.etcd).toBeUndefined()
  })

  it('an etcd member with the cluster reads', () => {
    const d = parseDoctorOutput(c, m1, M1_OUT)
    expect(d.swaps).toEqual([{path: '/swapfile', type: 'file', sizeKb: 8188}])
    expect(d.selinux).toBe('permissive')
    expect(d.ipForward).toBe('0')
    expect(d.bridgeDir).toBe(false)
    expect(d.iptables).toBeUndefined()
    expect(d.missingTools).toEqual(['iptables'])
    expect(d.firewalld).toEqual({
      state: 'active',
      ports: [
        {port: '2379/tcp', open: true},
        {port: '2380/tcp', open: false},
      ],
    })
    expect(d.etcd!.quotaBytes).toBe(8_589_934_592)
    expect(d.etcd!.process).toEqual({
      args: [
        '/opt/etcd/bin/etcd',
        '--cert-file=/opt/etcd/ssl/server.pem',
        '--client-cert-auth',
        '--quota-backend-bytes=8589934592',
      ],
      env: {ETCD_LISTEN_CLIENT_URLS: 'https://10.211.2.11:2379,https://127.0.0.1:2379'},
    })
    expect(etcdSetting(d.etcd!.process!, 'client-cert-auth')).toBe('true')
    expect(etcdSetting(d.etcd!.process!, 'listen-client-urls')).toBe('https://10.211.2.11:2379,https://127.0.0.1:2379')
    expect(etcdSetting(d.etcd!.process!, 'peer-client-cert-auth')).toBeUndefined()
    expect(Object.keys(d.etcd!.endpoints)).toEqual(['lab-m1'])
    expect(d.etcd!.endpoints['lab-m1'].health.rc).toBe(0)
    const r = d.etcd!.reads!
    expect(r.memberList.rc).toBe(0)
    expect(r.configV2).toEqual([
      {
        member: 'lab-m1',
        run: {
          stdout: '',
          stderr: 'Error:  client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint',
          rc: 4,
        },
      },
    ])
    expect(readV3(r.keysV3, '/coreos.com/network/config', 'lab-m1')).toMatchObject({
      state: 'present',
      value: expect.stringContaining('"Network":"10.244.0.0/16"'),
    })
    expect(readV2(r.configV2.map((x) => ({run: x.run, from: x.member})))).toEqual({state: 'disabled'})
    expect(parseDoctorOutput(c, m1, M1_OUT.replace('@@kflan:members@@', '@@kflan:other@@')).etcd!.reads).toBeUndefined()
  })

  it('etcd JSON: 64-bit IDs survive, get -w json decodes keys and values', () => {
    const st = parseEtcdJson<{Status: {leader: string; header: {member_id: string}}}[]>(
      M1_OUT.split('@@kflan:es-0@@\n')[1].split('\n')[0],
    )!
    expect(st[0].Status.leader).toBe('10488759157124456252')
    expect(st[0].Status.header.member_id).toBe('6380610312619252246')
    const kvs = parseGetJson(M1_OUT.split('@@kflan:keys3@@\n')[1].split('\n')[0])!
    expect(kvs.map((k) => k.key)).toEqual(['/coreos.com/network/config', '/coreos.com/network/subnets/10.244.5.0-24'])
    expect(kvs[1].lease).toBe('6862538066477234950')
    expect(parseGetJson('{"header":{"revision":1}}')).toEqual([])
    expect(parseGetJson('Error: context deadline exceeded')).toBeUndefined()
  })

  it('etcdctl errors: the cause behind "context deadline exceeded"', () => {
    const tls = {
      stdout: '[]',
      stderr:
        '{"level":"warn","error":"rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = \\"transport: authentication handshake failed: x509: certificate is valid for 127.0.0.1, not 10.211.2.12\\""}\nFailed to get the status of endpoint https://10.211.2.12:2379 (context deadline exceeded)',
      rc: 1,
    }
    expect(specificError(tls)).toBe('x509: certificate is valid for 127.0.0.1, not 10.211.2.12')
    expect(specificError({stdout: '', stderr: 'Error: unhealthy cluster', rc: 1})).toBeUndefined()
    expect(etcdctlError({stdout: '', stderr: '{"level":"warn"}\nError: unhealthy cluster', rc: 1})).toBe(
      'Error: unhealthy cluster',
    )
    expect(etcdctlError({stdout: '', stderr: '', rc: 1}, 'context deadline exceeded')).toBe('context deadline exceeded')
  })

  it('v2 reads: present on any member wins; "Key not found" is absent; no --enable-v2 is disabled', () => {
    const off = {
      stdout: '',
      stderr: 'Error:  client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint',
      rc: 4,
    }
    const missing = {stdout: '', stderr: 'Error:  100: Key not found (/coreos.com) [12]', rc: 4}
    expect(
      readV2([
        {run: off, from: 'a'},
        {run: {stdout: '{"Network":"x"}\n', stderr: '', rc: 0}, from: 'b'},
      ]),
    ).toEqual({state: 'present', value: '{"Network":"x"}', from: 'b'})
    expect(
      readV2([
        {run: off, from: 'a'},
        {run: missing, from: 'b'},
      ]),
    ).toEqual({state: 'absent'})
    expect(
      readV2([{run: {stdout: '', stderr: 'Error: dial tcp: connect: connection refused', rc: 4}, from: 'a'}]),
    ).toEqual({state: 'unknown', error: 'a: connect: connection refused'})
  })

  it('firewall-cmd --list-all: ports, known services, zone target ACCEPT', () => {
    const text =
      'state=active\npublic (active)\n  target: default\n  services: ssh etcd-server\n  ports: 8472/udp 2379/tcp\n'
    expect(parseFirewalld(text, ['2379/tcp', '2380/tcp', '8472/udp', '8285/udp']).ports.map((p) => p.open)).toEqual([
      true,
      true,
      true,
      false,
    ])
    expect(parseFirewalld('state=active\ntrusted (active)\n  target: ACCEPT\n', ['2380/tcp']).ports[0].open).toBe(true)
    expect(parseFirewalld('state=inactive\n', ['2380/tcp'])).toEqual({state: 'inactive', ports: []})
  })

  it('routes and links without JSON support', () => {
    expect(
      parseRoutes('#text\ndefault via 10.0.0.1 dev eth0\n10.244.5.0/24 via 10.244.5.0 dev flannel.1 onlink\n'),
    ).toEqual([
      {dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: []},
      {dst: '10.244.5.0/24', gateway: '10.244.5.0', dev: 'flannel.1', flags: ['onlink']},
    ])
    expect(parseVxlan('')).toBeUndefined()
  })
})
