import {parseSubnetEnv, type SubnetEnv, subnetOfGateway} from '../cluster/flannel-state.js'
import {type Lease, leasePrefix, leasesFromKvs, parseLeaseListing} from '../cluster/leases.js'
/**
 * flanneld (pure): the unit, the lease in etcd (one per host, inside the Network, with the host's
 * address as PublicIP, no subnet shared by two hosts), the subnet file against the lease, the
 * vxlan device, and a route to every other flannel host's subnet.
 */
import {type Cluster, flannelHosts} from '../inventory/model.js'
import {type Cidr, cidrContainsCidr, parseCidr} from '../inventory/net.js'
import {etcdctlError, parseGetJson} from './etcd-output.js'
import {hostFlannel} from './flannel-host.js'
import {type CheckResult, type DoctorInput, type HostData, plural, readsOf, resultFor, stateOf} from './types.js'

/** The leases (v3: from the prefix read; v2: the listing); undefined when no member was asked. */
export function readLeases(input: DoctorInput): {leases: Lease[]; from: string} | {error: string} | undefined {
  const c = input.cluster
  const r = readsOf(input)
  if (!r) return undefined
  if (c.flannel.etcdApi === 'v2') {
    const run = r.reads.leasesV2
    if (!run || run.rc !== 0) return {error: `${r.from}: ${run ? etcdctlError(run) : 'not read'}`}
    return {leases: parseLeaseListing(run.stdout), from: r.from}
  }

  // v3: the leases come with the one read of the whole prefix (config and leases).
  const kvs = r.reads.keysV3.rc === 0 ? parseGetJson(r.reads.keysV3.stdout) : undefined
  if (!kvs) return {error: `${r.from}: ${etcdctlError(r.reads.keysV3)}`}
  return {leases: leasesFromKvs(c, kvs), from: r.from}
}

export function subnetEnvOf(c: Cluster, d: HostData | undefined): SubnetEnv | undefined {
  const text = d?.files[c.flannel.subnetFile]
  return text === undefined ? undefined : parseSubnetEnv(text)
}

export function cidr(s: string | undefined): Cidr | undefined {
  if (!s) return undefined
  const p = parseCidr(s)
  return typeof p === 'string' ? undefined : p
}

export function flannelChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const out: CheckResult[] = []
  const hosts = flannelHosts(c)
  if (hosts.length === 0) return out
  const net = cidr(c.flannel.network)!
  const read = readLeases(input)
  const leases = read && 'leases' in read ? read.leases : undefined
  // Subnets the hosts' subnet files claim, for duplicates.
  const claimed = new Map<string, string[]>()
  for (const h of hosts) {
    const env = subnetEnvOf(c, stateOf(input, h.name)?.data)
    if (env?.subnet) {
      const sn = subnetOfGateway(env.subnet)
      claimed.set(sn, [...(claimed.get(sn) ?? []), h.name])
    }
  }

  if (read && 'error' in read)
    out.push(resultFor('flannel.leases').fail(`cannot read the leases: ${read.error}`, 'see etcd.health'))
  else if (leases) {
    const r = resultFor('flannel.leases')
    const known = new Set(hosts.map((h) => h.address))
    const strays = leases.filter((l) => !l.publicIp || !known.has(l.publicIp))
    const outside = leases.filter((l) => !cidrContainsCidr(net, cidr(l.subnet) ?? {base: 0, prefix: 0}))
    if (outside.length > 0)
      out.push(
        r.fail(
          `leases outside ${c.flannel.network}: ${outside.map((l) => `${l.subnet} (${l.publicIp ?? '?'})`).join(', ')}`,
          'the network config changed under running leases; delete the stale lease keys and restart flanneld on those hosts',
        ),
      )
    else if (strays.length > 0)
      out.push(
        r.warn(
          `${plural(strays.length, 'lease')} for hosts not in the inventory: ${strays.map((l) => `${l.subnet} (PublicIP ${l.publicIp ?? '?'})`).join(', ')}`,
          'a removed node or a flanneld with the wrong --public-ip; delete the key (`etcdctl del <key>`) once nothing uses it (it expires 24 h after its last renewal)',
        ),
      )
    else
      out.push(r.ok(`${plural(leases.length, 'lease')} in ${leasePrefix(c)}, all for flannel hosts of the inventory`))
  }

  for (const h of hosts) {
    const s = stateOf(input, h.name)
    if (!s?.data) continue
    out.push(...hostFlannel(c, h, s.data, leases, claimed))
  }

  return out
}
