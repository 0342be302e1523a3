import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import type {HostFacts} from '../../src/host/facts.js'
import type {Cluster} from '../../src/inventory/model.js'

import {parseInventory} from '../../src/inventory/load.js'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Parses inventory text, failing the test with the diagnostics when it does not load. */
export function clusterFrom(text: string, file = '/inv/inventory.yaml'): Cluster {
  const r = parseInventory(text, file)
  if (!r.cluster) throw new Error('inventory did not load:\n' + JSON.stringify(r.diagnostics, null, 2))
  return r.cluster
}

export function exampleCluster(name: 'example' | 'ha'): Cluster {
  const file = `${repoRoot}inventories/${name}.yaml`
  return clusterFrom(readFileSync(file, 'utf8'), file)
}

/** A stand-in PKI lookup for golden files: certificates are random, their names are not. */
export const fakePki = (file: string) => `-----FAKE ${file}-----\n`

/** A minimal valid inventory, with overrides spliced in as YAML text. */
export function minimalInventory(extra = ''): string {
  return `cluster: t
hosts:
  - {name: m1, address: 10.0.0.11}
  - {name: n1, address: 10.0.0.21}
  - {name: n2, address: 10.0.0.22}
roles:
  masters: [m1]
  nodes: [n1, n2]
etcd:
  version: 3.4.23
  tarball: etcd.tgz
flannel:
  version: 0.26.1
  tarball: flannel.tgz
  network: 10.244.0.0/16
${extra}`
}

/** Inventory text of the lab's shape: masters m1-m3 (etcd) and nodes n1, n2 (flannel) on NET.0/24. */
export function threeMastersTwoNodes(net = '10.0.0'): string {
  return `cluster: t
hosts:
  - {name: m1, address: ${net}.11}
  - {name: m2, address: ${net}.12}
  - {name: m3, address: ${net}.13}
  - {name: n1, address: ${net}.21}
  - {name: n2, address: ${net}.22}
roles:
  masters: [m1, m2, m3]
  nodes: [n1, n2]
etcd: {version: 3.4.23, tarball: etcd.tgz}
flannel: {version: 0.26.1, tarball: flannel.tgz, network: 10.244.0.0/16}
`
}

/** Facts of a prepared Debian flannel host (node01 of inventories/example.yaml). */
export function sampleFacts(over: Partial<HostFacts> = {}): HostFacts {
  const unit = {loadState: 'not-found', activeState: 'inactive', exists: false, active: false}
  return {
    hostname: 'node01',
    os: {id: 'debian', idLike: [], versionId: '12', prettyName: 'Debian GNU/Linux 12', family: 'debian'},
    kernel: '6.1',
    arch: 'x86_64',
    systemd: {present: true, running: true, version: 252},
    swap: {active: false, devices: []},
    selinux: {present: false},
    firewalld: {installed: false, active: false, state: 'inactive'},
    sysctl: {ipForward: true, bridgeNfCallIptables: true, bridgeNfCallIp6tables: true},
    brNetfilter: {loaded: true, procDir: true, module: false},
    docker: {
      installed: true,
      dockerdPath: '/usr/sbin/dockerd',
      execStart: '/usr/sbin/dockerd -H fd:// $DOCKER_OPTS',
      unit: {...unit, exists: true, dropInPaths: []},
    },
    etcd: {dataDir: '/var/lib/etcd/default.etcd', exists: false, nonEmpty: false, hasMember: false, unit},
    flanneld: {unit},
    listening: [{proto: 'tcp', address: '0.0.0.0', port: 22}],
    ports: {tcp2379: false, tcp2380: false, udp8472: false},
    interfaces: [{name: 'eth0', addresses: [{family: 'inet', address: '192.168.204.173', prefixLen: 24}]}],
    clock: {remoteMs: 0, skewMs: 0, uncertaintyMs: 1},
    iptables: {present: true, forwardPolicy: 'ACCEPT'},
    tools: {sha256sum: true, base64: true, tar: true, ip: true, systemctl: true, iptables: true},
    gatherMs: 5,
    warnings: [],
    ...over,
  }
}
