import {describe, expect, it} from 'vitest'

import {
  leaseDeleteCommand,
  leaseKey,
  leaseListCommand,
  leasePrefix,
  leasesFromKvs,
  parseLeaseListing,
  readLeases,
} from '../../src/cluster/leases.js'
import {clusterFrom, minimalInventory} from './helpers.js'

const V3 = clusterFrom(minimalInventory())
const V2 = clusterFrom(minimalInventory().replace('version: 0.26.1', 'version: 0.17.0'))

const VXLAN =
  '{"PublicIP":"10.0.0.21","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'
// flannel 0.17 (v2 API): no PublicIPv6, vxlan data with VNI and VtepMAC.
const OLD = '{"PublicIP":"10.0.0.22","BackendType":"vxlan","BackendData":{"VtepMAC":"62:16:61:ba:bc:1a","VNI":1}}'

describe('flannel leases: one key format and one parser for v2 and v3', () => {
  it('names lease keys as flannel does', () => {
    expect(leasePrefix(V3)).toBe('/coreos.com/network/subnets')
    expect(leaseKey(V3, '10.244.5.0/24')).toBe('/coreos.com/network/subnets/10.244.5.0-24')
  })

  it('parses a listing (key and value lines), skipping keys that are not leases', () => {
    const out = `/coreos.com/network/subnets/10.244.5.0-24\n${VXLAN}\n/coreos.com/network/subnets/10.244.9.0-24\n${OLD}\n/coreos.com/network/subnets/junk\n{}\n/coreos.com/network/subnets/10.244.7.0-24\nnot json\n`
    expect(parseLeaseListing(out)).toEqual([
      {
        key: '/coreos.com/network/subnets/10.244.5.0-24',
        subnet: '10.244.5.0/24',
        publicIp: '10.0.0.21',
        backendType: 'vxlan',
        vtepMac: 'c6:d2:32:6f:8f:44',
      },
      {
        key: '/coreos.com/network/subnets/10.244.9.0-24',
        subnet: '10.244.9.0/24',
        publicIp: '10.0.0.22',
        backendType: 'vxlan',
        vtepMac: '62:16:61:ba:bc:1a',
      },
      {
        key: '/coreos.com/network/subnets/10.244.7.0-24',
        subnet: '10.244.7.0/24',
        publicIp: undefined,
        backendType: undefined,
        vtepMac: undefined,
      },
    ])
    expect(parseLeaseListing('')).toEqual([])
  })

  it('finds the leases among the keys of a whole-prefix read', () => {
    const kvs = [
      {key: '/coreos.com/network/config', value: '{"Network":"10.244.0.0/16"}'},
      {key: '/coreos.com/network/subnets/10.244.5.0-24', value: VXLAN},
      {key: '/other/subnets/10.9.0.0-24', value: VXLAN},
    ]
    expect(leasesFromKvs(V3, kvs).map((l) => l.subnet)).toEqual(['10.244.5.0/24'])
  })

  it('lists through v3 for flannel >= 0.18 and through v2 before', () => {
    expect(V3.flannel.etcdApi).toBe('v3')
    expect(leaseListCommand(V3)).toMatch(/^ETCDCTL_API=3 .* get \/coreos.com\/network\/subnets\/ --prefix$/)
    expect(leaseListCommand(V3, {local: true, v3Flags: '--command-timeout=2s'})).toMatch(
      /--prefix --consistency=s --command-timeout=2s$/,
    )
    expect(V2.flannel.etcdApi).toBe('v2')
    const v2 = leaseListCommand(V2, {local: true})
    expect(v2).toContain('ETCDCTL_API=2 /opt/etcd/bin/etcdctl')
    expect(v2).toContain('--no-sync ls /coreos.com/network/subnets')
    expect(v2).toContain('--no-sync get "$k"')
    // No lease directory yet is an empty listing, not an error.
    expect(v2).toContain('*"Key not found"*) true')
    expect(leaseDeleteCommand(V2, '/coreos.com/network/subnets/10.244.5.0-24')).toMatch(
      /^ETCDCTL_API=2 .* rm \/coreos.com\/network\/subnets\/10.244.5.0-24$/,
    )
    expect(leaseDeleteCommand(V3, '/coreos.com/network/subnets/10.244.5.0-24')).toMatch(
      /^ETCDCTL_API=3 .* del \/coreos.com\/network\/subnets\/10.244.5.0-24$/,
    )
  })

  it("reads through the command for the cluster's API", async () => {
    const seen: string[] = []
    const via = {
      async run(cmd: string) {
        seen.push(cmd)
        return {stdout: `/coreos.com/network/subnets/10.244.9.0-24\n${OLD}\n`}
      },
    }
    expect((await readLeases(V2, via)).map((l) => l.publicIp)).toEqual(['10.0.0.22'])
    expect(seen[0]).toMatch(/^sh -c '.*ETCDCTL_API=2/s)
  })
})
