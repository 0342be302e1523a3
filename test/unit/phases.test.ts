import {describe, expect, it} from 'vitest'

import type {HostFacts} from '../../src/host/facts.js'

import {etcdctl, parseEndpointHealth, parseMemberList} from '../../src/cluster/etcdctl.js'
import {parseSubnetEnv, subnetOfGateway} from '../../src/cluster/flannel-state.js'
import {expectedVxlanMtu} from '../../src/cluster/flannel.js'
import {parseLeaseListing as parseLeases} from '../../src/cluster/leases.js'
import {incompatibleChanges, parseNetworkConfig} from '../../src/cluster/netconfig.js'
import {parseSs} from '../../src/host/net.js'
import {resetFailedStep, vendorExecStart} from '../../src/init/common.js'
import {deviceMtuChange} from '../../src/init/flannel.js'
import {preflightChecks} from '../../src/init/preflight-checks.js'
import {commentOutSwap, selinuxDisabled} from '../../src/init/preflight.js'
import {clusterFrom, exampleCluster, minimalInventory, sampleFacts} from './helpers.js'

describe('preflight checks', () => {
  const c = exampleCluster('example')
  const node01 = c.hosts[1]
  const names = (f: HostFacts) => preflightChecks(c, node01, f).map((x) => `${x.severity}:${x.name}`)

  it('passes a prepared Debian host', () => {
    expect(names(sampleFacts())).toEqual([])
  })

  it('names each failed check like kubeadm', () => {
    expect(
      names(
        sampleFacts({interfaces: [{name: 'eth0', addresses: [{family: 'inet', address: '10.0.2.15', prefixLen: 24}]}]}),
      ),
    ).toEqual(['error:HostAddress'])
    expect(names(sampleFacts({docker: {...sampleFacts().docker, installed: false}}))).toEqual(['error:Docker'])
    expect(names(sampleFacts({listening: [{proto: 'tcp', address: '0.0.0.0', port: 2379}]}))).toEqual([
      'error:Port-2379',
    ])
    expect(names(sampleFacts({listening: [{proto: 'udp', address: '0.0.0.0', port: 8472}]}))).toEqual([
      'error:Port-8472',
    ])
    expect(names(sampleFacts({systemd: {present: false, running: false}}))).toEqual(['error:Systemd'])
    expect(names(sampleFacts({arch: 'aarch64'}))).toEqual(['error:Arch'])
    expect(
      names(sampleFacts({os: {id: 'alpine', idLike: [], versionId: '3', prettyName: 'Alpine', family: 'other'}})),
    ).toEqual(['error:OS'])
  })

  it("accepts ports held by kflan's own running etcd and warns about foreign etcd data", () => {
    const running = {loadState: 'loaded', activeState: 'active', exists: true, active: true}
    expect(
      names(
        sampleFacts({
          listening: [{proto: 'tcp', address: '0.0.0.0', port: 2379}],
          etcd: {...sampleFacts().etcd, unit: running},
        }),
      ),
    ).toEqual([])
    expect(names(sampleFacts({etcd: {...sampleFacts().etcd, exists: true, nonEmpty: true, hasMember: true}}))).toEqual([
      'warning:ExistingEtcdData',
    ])
  })
})

describe('host preparation edits', () => {
  it('comments out swap lines in /etc/fstab and nothing else', () => {
    const fstab = 'UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\n'
    const out = commentOutSwap(fstab)
    expect(out).toBe(
      'UUID=1 / ext4 defaults 0 1\n# /swapfile none swap sw 0 0 # disabled by kflan\n# /old none swap sw 0 0\n',
    )
    expect(commentOutSwap(out)).toBe(out)
  })

  it('sets SELINUX=disabled', () => {
    expect(selinuxDisabled('SELINUX=enforcing\nSELINUXTYPE=targeted\n')).toBe(
      'SELINUX=disabled\nSELINUXTYPE=targeted\n',
    )
    expect(selinuxDisabled('SELINUXTYPE=targeted')).toBe('SELINUXTYPE=targeted\nSELINUX=disabled\n')
  })

  it("takes docker's ExecStart without kflan's own addition", () => {
    expect(vendorExecStart('/usr/sbin/dockerd -H fd:// $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS')).toBe(
      '/usr/sbin/dockerd -H fd:// $DOCKER_OPTS',
    )
    expect(vendorExecStart('/usr/bin/dockerd -H fd://')).toBe('/usr/bin/dockerd -H fd://')
  })
})

describe('flannel and etcd state parsers', () => {
  it('parses the subnet file', () => {
    expect(
      parseSubnetEnv(
        'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
      ),
    ).toEqual({network: '10.5.0.0/16', subnet: '10.5.72.1/24', mtu: 1450, ipMasq: false})
    expect(subnetOfGateway('10.5.72.1/24')).toBe('10.5.72.0/24')
  })

  it('parses leases from etcdctl get --prefix', () => {
    const out =
      '/coreos.com/network/subnets/10.5.72.0-24\n{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}\n/coreos.com/network/subnets/10.5.9.0-24\n{"PublicIP":"192.168.64.4","PublicIPv6":null,"BackendType":"host-gw"}\n'
    expect(parseLeases(out)).toEqual([
      {
        key: '/coreos.com/network/subnets/10.5.72.0-24',
        subnet: '10.5.72.0/24',
        publicIp: '192.168.64.3',
        backendType: 'vxlan',
        vtepMac: 'c6:d2:32:6f:8f:44',
      },
      {
        key: '/coreos.com/network/subnets/10.5.9.0-24',
        subnet: '10.5.9.0/24',
        publicIp: '192.168.64.4',
        backendType: 'host-gw',
        vtepMac: undefined,
      },
    ])
  })

  it('tells which network config changes flannel cannot apply at runtime', () => {
    const cur = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1}}')!
    expect(incompatibleChanges(cur, {...cur})).toEqual([])
    expect(incompatibleChanges(cur, {...cur, Network: '10.245.0.0/16'})).toEqual([
      'Network 10.244.0.0/16 → 10.245.0.0/16',
    ])
    expect(incompatibleChanges(cur, {...cur, Backend: {Type: 'host-gw'}})[0]).toMatch(/^Backend/)
    expect(parseNetworkConfig('not json')).toBeUndefined()
  })

  it('parses endpoint health and builds etcdctl lines with the client certificate', () => {
    const out =
      '[{"endpoint":"https://10.0.0.1:2379","health":true,"took":"2ms"},{"endpoint":"https://10.0.0.2:2379","health":false,"error":"context deadline exceeded"}]'
    expect(parseEndpointHealth(out)).toEqual([
      {endpoint: 'https://10.0.0.1:2379', health: true, error: undefined},
      {endpoint: 'https://10.0.0.2:2379', health: false, error: 'context deadline exceeded'},
    ])
    const c = exampleCluster('example')
    expect(etcdctl(c, 'member list')).toBe(
      'ETCDCTL_API=3 /opt/etcd/bin/etcdctl --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem --endpoints=https://192.168.204.171:2379,https://192.168.204.173:2379,https://192.168.204.175:2379 --dial-timeout=2s --command-timeout=5s member list',
    )
  })

  it('parses etcdctl member list, including a member added but never started (no name yet)', () => {
    // `member list -w json`: the IDs are 64-bit JSON numbers (beyond a double's exact range here).
    const out =
      '{"header":{"cluster_id":5341224225792870368,"member_id":9372538179322589801,"raft_term":2},"members":[{"ID":9372538179322589801,"name":"lab-m1","peerURLs":["https://10.211.0.11:2380"],"clientURLs":["https://10.211.0.11:2379"]},{"ID":10501334649042878790,"peerURLs":["https://10.211.0.12:2380"],"isLearner":true}]}\n'
    expect(parseMemberList(out)).toEqual([
      {
        id: '8211f1d0f64f3269',
        name: 'lab-m1',
        peerUrls: ['https://10.211.0.11:2380'],
        clientUrls: ['https://10.211.0.11:2379'],
        learner: false,
      },
      {id: '91bc3c398fb3c146', name: '', peerUrls: ['https://10.211.0.12:2380'], clientUrls: [], learner: true},
    ])
    expect(parseMemberList('')).toBeUndefined()
    expect(parseMemberList('Error: context deadline exceeded')).toBeUndefined()
  })
})

describe('flannel fixes found with the real binaries', () => {
  const c = exampleCluster('example')
  const node01 = c.hosts[1]
  const running = (mainPid: number) => ({
    loadState: 'loaded',
    activeState: 'active',
    exists: true,
    active: true,
    mainPid,
  })

  it("refuses the healthz port when another process holds it, not when kflan's flanneld does", () => {
    const port = c.flannel.healthzPort
    const held = (pid: number, name: string) => [
      {proto: 'tcp' as const, address: '0.0.0.0', port, processes: [{name, pid}]},
    ]
    const names = (f: HostFacts) => preflightChecks(c, node01, f).map((x) => `${x.severity}:${x.name}`)
    expect(names(sampleFacts({listening: held(321, 'nginx')}))).toEqual([`error:Port-${port}`])
    expect(preflightChecks(c, node01, sampleFacts({listening: held(321, 'nginx')}))[0].message).toContain(
      'by nginx (pid 321)',
    )
    expect(names(sampleFacts({listening: held(321, 'flanneld'), flanneld: {unit: running(321)}}))).toEqual([])
    // A running flanneld that does not hold the port (an old unit without --healthz-port) does not excuse another holder.
    expect(names(sampleFacts({listening: held(99, 'python3'), flanneld: {unit: running(321)}}))).toEqual([
      `error:Port-${port}`,
    ])
    // Without ss -p (not root): taken and flanneld not running is an error; flanneld running is trusted.
    const anon = [{proto: 'tcp' as const, address: '0.0.0.0', port}]
    expect(names(sampleFacts({listening: anon}))).toEqual([`error:Port-${port}`])
    expect(names(sampleFacts({listening: anon, flanneld: {unit: running(321)}}))).toEqual([])
    expect(parseSs('tcp LISTEN 0 4096 *:8471 *:* users:(("flanneld",pid=812,fd=9))')).toEqual([
      {proto: 'tcp', address: '*', port: 8471, processes: [{name: 'flanneld', pid: 812}]},
    ])
  })

  it("takes the UDP port held by the kernel for a stopped flanneld's vxlan device as flannel's own", () => {
    const names = (f: HostFacts) => preflightChecks(c, node01, f).map((x) => `${x.severity}:${x.name}`)
    const udp = [{proto: 'udp' as const, address: '0.0.0.0', port: 8472}]
    const withDevice = [...sampleFacts().interfaces, {name: 'flannel.1', mtu: 1450, addresses: []}]
    expect(names(sampleFacts({listening: udp, interfaces: withDevice}))).toEqual([])
    expect(
      names(sampleFacts({listening: [{...udp[0], processes: [{name: 'socat', pid: 7}]}], interfaces: withDevice})),
    ).toEqual(['error:Port-8472'])
    expect(names(sampleFacts({listening: udp}))).toEqual(['error:Port-8472'])
  })

  it('resets a failed unit before starting it, and says why', () => {
    expect(resetFailedStep('docker', {active: 'failed', result: 'start-limit-hit'})).toEqual([
      {what: 'systemctl reset-failed docker (it was failed: start-limit-hit)', cmd: 'systemctl reset-failed docker'},
    ])
    expect(resetFailedStep('docker', {active: 'active', result: 'success'})).toEqual([])
    expect(resetFailedStep('flanneld', {active: 'inactive'})).toEqual([])
  })

  it('recreates the vxlan device when its MTU differs from what flanneld would create', () => {
    const facts = (devMtu: number) =>
      sampleFacts({
        interfaces: [
          ...sampleFacts().interfaces.map((i) => ({...i, mtu: 1500})),
          {name: 'flannel.1', mtu: devMtu, addresses: []},
        ],
      })
    const withMtu = (version: string, mtu?: string) =>
      clusterFrom(
        minimalInventory()
          .replace('version: 0.26.1', `version: ${version}`)
          .replace(
            'network: 10.244.0.0/16',
            `network: 10.244.0.0/16\n  backend: {type: vxlan${mtu ? `, mtu: ${mtu}` : ''}}`,
          ),
      )
    const n1 = (cl: ReturnType<typeof withMtu>) => cl.hosts.find((h) => h.name === 'n1')!
    const f = (cl: ReturnType<typeof withMtu>, devMtu: number) =>
      deviceMtuChange(cl, n1(cl), {
        ...facts(devMtu),
        interfaces: facts(devMtu).interfaces.map((i) =>
          i.name === 'flannel.1'
            ? i
            : {...i, addresses: [{family: 'inet' as const, address: n1(cl).address, prefixLen: 24}]},
        ),
      })
    const v26 = withMtu('0.26.1', '1400')
    expect(f(v26, 1450)).toEqual({device: 'flannel.1', from: 1450, to: 1350})
    expect(f(v26, 1350)).toBeUndefined()
    expect(f(withMtu('0.26.1'), 1450)).toBeUndefined() // interface 1500 - 50
    expect(f(withMtu('0.26.1'), 1350)).toEqual({device: 'flannel.1', from: 1350, to: 1450}) // the MTU option was removed
    expect(f(withMtu('0.17.0'), 1400)).toBeUndefined() // before 0.21.3 flanneld sets no device MTU
    expect(expectedVxlanMtu(withMtu('0.26.1', '9000'), 1500)).toBe(8950)
  })

  it('lets the backend MTU change under leases (kflan applies it), nothing else of the backend', () => {
    const cur = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1,"MTU":1500}}')!
    expect(incompatibleChanges(cur, {...cur, Backend: {Type: 'vxlan', VNI: 1, MTU: 1400}})).toEqual([])
    expect(incompatibleChanges(cur, {...cur, Backend: {Type: 'vxlan', VNI: 1}})).toEqual([])
    expect(incompatibleChanges(cur, {...cur, Backend: {Type: 'vxlan', VNI: 2, MTU: 1500}})).toHaveLength(1)
  })
})
