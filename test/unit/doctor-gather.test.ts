/**
 * kflan doctor's gathering, pure: the scripts are valid sh and their helper functions work (run
 * locally with stand-ins), and real output captured from lab hosts parses into the data the checks
 * read.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

import {etcdctl, etcdctlV2, parseEtcdJson} from '../../src/cluster/etcdctl.js'
import {etcdctlError, parseGetJson, specificError} from '../../src/doctor/etcd-output.js'
import {doctorScript, followUpProbes, hostFiles, parseDoctorOutput} from '../../src/doctor/gather.js'
import {readV2, readV3} from '../../src/doctor/network.js'
import {parsePingOutput, pingScript} from '../../src/doctor/ping.js'
import {endpointProbes, readProbes} from '../../src/doctor/reads.js'
import {etcdSetting} from '../../src/host/etcd.js'
import {fileContentsProbe} from '../../src/host/files.js'
import {probeScript} from '../../src/host/probe.js'
import {clusterFrom, minimalInventory} from './helpers.js'

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

// Captured from lab hosts after `kflan init` (3 masters + 2 nodes, etcd 3.5.35, flanneld 0.26.1):
// lab-n1's checks script, and lab-m1's with the cluster reads.
const fixture = (name: string) => readFileSync(new URL(`fixtures/host/${name}.txt`, import.meta.url), 'utf8')
const N1_OUT = fixture('lab-doctor-n1')
const M1_REAL = fixture('lab-doctor-m1')

/** Replaces one section's body in a script's output. */
function withSection(out: string, name: string, body: string): string {
  const re = new RegExp(`(@@kflan:${name}@@\n)[\\s\\S]*?(?=\n@@kflan:)`)
  if (!re.test(out)) throw new Error(`no section ${name}`)
  return out.replace(re, (_, head: string) => `${head}${body}\n`)
}

// lab-m1 with a few faults edited in: swap, SELinux, ip_forward 0, no br_netfilter, no iptables,
// firewalld running, a larger quota.
let M1_OUT = withSection(
  M1_REAL,
  'swaps',
  'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t8188\t\t0\t\t-2',
)
M1_OUT = withSection(M1_OUT, 'selinux', 'getenforce=Permissive')
M1_OUT = withSection(M1_OUT, 'sysctl', 'net/ipv4/ip_forward=0')
M1_OUT = withSection(M1_OUT, 'br_netfilter', '')
M1_OUT = withSection(M1_OUT, 'iptables-filter', '#missing')
M1_OUT = withSection(
  M1_OUT,
  'firewalld',
  'installed=1\nstate=active\nzone=1\npublic (active)\n  target: default\n  icmp-block-inversion: no\n  interfaces: eth0\n  services: dhcpv6-client ssh etcd-client\n  ports: 8472/udp\n  protocols:\n@trusted-sources=',
)
M1_OUT = M1_OUT.replace(
  'arg --peer-client-cert-auth\n',
  'arg --peer-client-cert-auth\narg --quota-backend-bytes=8589934592\n',
)

describe('doctor scripts', () => {
  it('are valid sh for every role, with and without the cluster reads', () => {
    for (const script of [
      doctorScript(c, m1, {reads: true}),
      doctorScript(c, m1),
      doctorScript(c, n1),
      probeScript(Object.values(followUpProbes(c, {members: [c.hosts[1]], reads: true}))),
      probeScript([fileContentsProbe(['/a b/k.pem'], 'keys')]),
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
    ).toBe('490\nactive\ninactive\n')
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
    expect(hostFiles(c, n1).keys).toEqual(['/opt/flannel/ssl/flanneld-key.pem'])
    const out = sh(probeScript([fileContentsProbe([k, join(work, 'missing.pem')], 'keys')]))
    const d = parseDoctorOutput(c, n1, N1_OUT, out)
    expect(d.files['/opt/flannel/ssl/flanneld-key.pem']).toBe(
      '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----',
    )
  })
})

describe('parsing what the hosts said', () => {
  it('a flannel node', () => {
    const clock = {remoteMs: 1, skewMs: 12, uncertaintyMs: 3}
    const d = parseDoctorOutput(c, n1, N1_OUT, '', clock)
    expect(d.swap).toEqual({active: false, devices: []})
    expect(d.selinux).toEqual({present: false})
    expect(d.sysctl).toEqual({ipForward: true, bridgeNfCallIptables: true, bridgeNfCallIp6tables: true})
    expect(d.brNetfilter.procDir).toBe(true)
    expect(d.units.flanneld).toMatchObject({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      mainPid: 367,
    })
    expect(d.units.docker).toMatchObject({
      mainPid: 490,
      dropInPaths: ['/etc/systemd/system/docker.service.d/10-kflan-flannel.conf'],
    })
    expect(d.units.docker!.execStart).toBe(
      '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS',
    )
    expect(d.units.etcd).toMatchObject({loadState: 'not-found', mainPid: undefined})
    expect(d.files['/opt/flannel/ssl/ca.pem']).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[\s\S]*-----END CERTIFICATE-----$/,
    )
    expect(d.files['/opt/flannel/ssl/flanneld.pem']).toMatch(/^-----BEGIN CERTIFICATE-----/)
    expect(d.files['/run/flannel/subnet.env']).toContain('FLANNEL_SUBNET=10.244.43.1/24')
    expect(d.files['/opt/flannel/ssl/flanneld-key.pem']).toBeUndefined()
    expect(d.interfaces.find((a) => a.name === 'docker0')).toMatchObject({
      mtu: 1450,
      addresses: [{family: 'inet', address: '10.244.43.1', prefixLen: 24}],
    })
    expect(d.routes[2]).toEqual({dst: '10.244.27.0/24', gateway: '10.244.27.0', dev: 'flannel.1', flags: ['onlink']})
    expect(d.vxlan).toMatchObject({name: 'flannel.1', vni: 1, local: '10.211.2.21', port: 8472})
    expect(d.dockerCmdline).toContain('--bip=10.244.43.1/24')
    expect(d.dockerVendorExecStart).toBe(
      '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS',
    )
    expect(d.health).toEqual({healthz: {url: 'http://127.0.0.1:8471/healthz', code: 200, body: 'flanneld is running'}})
    expect(d.iptables?.rules).toContain('-P FORWARD ACCEPT')
    expect(d.firewalld).toEqual({installed: true, active: false, state: 'inactive', ports: []})
    expect(d.clock).toEqual(clock)
    expect(d.missingTools).toEqual([])
    expect(d.etcd).toBeUndefined()
  })

  it('an etcd member with the cluster reads', () => {
    const d = parseDoctorOutput(c, m1, M1_OUT)
    expect(d.swap.devices).toEqual([{path: '/swapfile', type: 'file', sizeKb: 8188, usedKb: 0}])
    expect(d.selinux.mode).toBe('permissive')
    expect(d.sysctl.ipForward).toBe(false)
    expect(d.brNetfilter.procDir).toBe(false)
    expect(d.iptables).toBeUndefined()
    expect(d.missingTools).toEqual(['iptables'])
    expect(d.firewalld).toMatchObject({
      state: 'active',
      trustedSources: [],
      ports: [
        {port: '2379/tcp', open: true},
        {port: '2380/tcp', open: false},
      ],
    })
    expect(d.etcd!.quotaBytes).toBe(8_589_934_592)
    expect(d.etcd!.process!.args).toContain('--quota-backend-bytes=8589934592')
    expect(d.etcd!.process!.env.ETCD_NAME).toBe('lab-m1')
    expect(etcdSetting(d.etcd!.process!, 'client-cert-auth')).toBe('true')
    expect(etcdSetting(d.etcd!.process!, 'listen-client-urls')).toBe('https://10.211.2.11:2379,https://127.0.0.1:2379')
    expect(etcdSetting(d.etcd!.process!, 'peer-client-cert-auth')).toBe('true')
    expect(etcdSetting(d.etcd!.process!, 'auto-tls')).toBeUndefined()
    expect(Object.keys(d.etcd!.endpoints)).toEqual(['lab-m1'])
    expect(d.etcd!.endpoints['lab-m1'].health.rc).toBe(0)
    const r = d.etcd!.reads!
    expect(r.memberList.rc).toBe(0)
    expect(r.configV2.map((x) => [x.member, x.run.rc])).toEqual([
      ['lab-m1', 4],
      ['lab-m2', 4],
      ['lab-m3', 4],
    ])
    expect(r.configV2[0].run.stderr).toMatch(/response is invalid json|404/)
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
    expect(st[0].Status.leader).toBe('6622442394103985678')
    expect(st[0].Status.header.member_id).toBe('6380610312619252246')
    const kvs = parseGetJson(M1_OUT.split('@@kflan:keys3@@\n')[1].split('\n')[0])!
    expect(kvs.map((k) => k.key)).toEqual([
      '/coreos.com/network/config',
      '/coreos.com/network/subnets/10.244.27.0-24',
      '/coreos.com/network/subnets/10.244.43.0-24',
    ])
    expect(kvs[1].lease).toBe('3895229067676162829')
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
})

describe('etcdctl bounds (timeouts.etcdRequest)', () => {
  const v3 = (cl: typeof c) => Object.values({...readProbes(cl), ...endpointProbes(cl, [cl.hosts[0]])}).map((p) => p.sh)

  it('default: 2s to connect and 5s in all; doctor 1s and 2s, given once', () => {
    expect(etcdctl(c, 'member list')).toContain(' --dial-timeout=2s --command-timeout=5s member list')
    expect(etcdctlV2(c, 'ls')).toContain(' --timeout=2s --total-timeout=5s ls')
    const doctor = v3(c)
    expect(doctor.length).toBeGreaterThan(4)
    for (const sh of doctor) {
      expect(sh).toMatch(/--(dial-)?timeout=1s --(command|total)-timeout=2s /)
      expect(sh.match(/timeout=/g)).toHaveLength(2)
    }
  })

  it('follow the inventory for slow hosts, in etcdctl v3 and v2 alike', () => {
    const slow = clusterFrom(minimalInventory('timeouts: {etcdRequest: 30s}\n'))
    expect(etcdctl(slow, 'member list')).toContain(' --dial-timeout=12s --command-timeout=30s member list')
    expect(etcdctlV2(slow, 'ls')).toContain(' --timeout=12s --total-timeout=30s ls')
    for (const sh of v3(slow)) expect(sh).toMatch(/--(dial-)?timeout=6s --(command|total)-timeout=12s /)
    const odd = clusterFrom(minimalInventory('timeouts: {etcdRequest: 7s}\n'))
    expect(etcdctl(odd, 'x')).toContain(' --dial-timeout=2800ms --command-timeout=7s x')
    expect(v3(odd)[0]).toContain('--dial-timeout=1400ms --command-timeout=2800ms ')
  })
})
