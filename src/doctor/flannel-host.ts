/**
 * flanneld on one host (pure): the unit, its lease, the subnet file against the lease, the vxlan
 * device and the routes to the other flannel hosts' subnets. Moved whole from doctor/flannel.ts,
 * which keeps the cluster-wide lease checks and calls this per host.
 */
import {subnetOfGateway} from '../cluster/flannel-state.js'
import {vxlanDevice} from '../cluster/flannel.js'
import {type Lease, leasePrefix} from '../cluster/leases.js'
import {type Cluster, flannelHosts, type Host} from '../inventory/model.js'
import {cidrContainsCidr} from '../inventory/net.js'
import {cidr, subnetEnvOf} from './flannel.js'
import {type CheckResult, type HostData, listing, plural, resultFor} from './types.js'

export function hostFlannel(
  c: Cluster,
  h: Host,
  d: HostData,
  leases: Lease[] | undefined,
  claimed: Map<string, string[]>,
): CheckResult[] {
  const out: CheckResult[] = []
  const r = (id: string) => resultFor(id, h.name)
  const net = cidr(c.flannel.network)!

  const u = d.units.flanneld
  const ur = r('flannel.unit')
  if (!u || u.loadState === 'not-found')
    out.push(ur.fail('flanneld.service is not installed', 'run `kflan init` (or `kflan join node` for a new node)'))
  else if (u.activeState === 'active') out.push(ur.ok(`flanneld.service is active (${u.subState ?? ''})`))
  else
    out.push(
      ur.fail(
        `flanneld.service is ${u.activeState}${u.subState ? ` (${u.subState ?? ''})` : ''}`,
        `run \`systemctl start flanneld\` on ${h.name} and read \`journalctl -u flanneld -n 50\` (docker and its containers keep running without it, but new leases get no routes)`,
      ),
    )

  // flanneld's own health endpoints (only asked while the unit runs: flannel.unit names the rest).
  if (u?.activeState === 'active' && d.health) {
    const hr = r('flannel.healthz')
    const probes = [d.health.healthz, d.health.readyz].filter((p): p is NonNullable<typeof p> => p !== undefined)
    const bad = probes.filter((p) => p.code !== 200)
    if (bad.length > 0) {
      out.push(
        hr.fail(
          bad
            .map(
              (p) =>
                `${p.url}: ${p.code === undefined ? `no answer${p.body ? ` (${p.body.split('\n')[0]})` : ''}` : `HTTP ${p.code}${p.body ? ` ${p.body.split('\n')[0]}` : ''}`}`,
            )
            .join('; '),
          `flanneld serves these on --healthz-port=${c.flannel.healthzPort}: read \`journalctl -u flanneld -n 50\` on ${h.name} (readyz answers 503 until the lease, rules and subnet file are in place)`,
        ),
      )
    } else
      out.push(
        hr.ok(probes.map((p) => `${p.url.replace(/^http:\/\/[^/]+/, '')} ${p.code} ${p.body}`.trim()).join(', ')),
      )
  }

  // Subnet file
  const env = subnetEnvOf(c, d)
  const sr = r('flannel.subnet-file')
  const own = env?.subnet ? subnetOfGateway(env.subnet) : undefined
  if (env) {
    const problems: string[] = []
    if (env.network !== c.flannel.network)
      problems.push(`FLANNEL_NETWORK=${env.network ?? '(missing)'}, not ${c.flannel.network}`)
    const sub = cidr(own)
    if (!sub) problems.push(`FLANNEL_SUBNET=${env.subnet ?? '(missing)'} is not a subnet`)
    else if (!cidrContainsCidr(net, sub)) problems.push(`FLANNEL_SUBNET=${env.subnet} is outside ${c.flannel.network}`)
    if (env.mtu === undefined || !Number.isFinite(env.mtu)) problems.push('FLANNEL_MTU is missing')
    const lease = leases?.find((l) => l.subnet === own)
    if (leases && own && !lease)
      problems.push(`no lease in etcd for ${own}: flanneld lost its lease (it re-registers when restarted)`)
    else if (lease && lease.publicIp !== h.address)
      problems.push(`the lease for ${own} belongs to PublicIP ${lease.publicIp}, not ${h.address}`)
    out.push(
      problems.length === 0
        ? sr.ok(`FLANNEL_SUBNET=${env.subnet} MTU ${env.mtu}${leases ? ', matches its lease' : ''}`)
        : sr.fail(
            problems.join('; '),
            'run `kflan init`: it restarts flanneld, and docker only if docker0 left the subnet flanneld leased',
          ),
    )
  } else {
    out.push(
      sr.fail(
        `${c.flannel.subnetFile} is missing: flanneld has not written it (not started, or waiting for etcd or the network config)`,
        'start flanneld and read its log (`journalctl -u flanneld`)',
      ),
    )
  }

  // Lease
  if (leases) {
    const lr = r('flannel.lease')
    const mine = leases.filter((l) => l.publicIp === h.address)
    const bySubnet = own ? leases.find((l) => l.subnet === own) : undefined
    if (mine.length === 0) {
      if (bySubnet && bySubnet.publicIp !== h.address) {
        out.push(
          lr.fail(
            `no lease with PublicIP ${h.address}; this host's subnet ${own} is leased to PublicIP ${bySubnet.publicIp}: flanneld picked the wrong interface or address`,
            `set the host's \`interface\` in the inventory (flanneld --iface/--public-ip) and run \`kflan init\``,
          ),
        )
      } else
        out.push(
          lr.fail(
            `no lease with PublicIP ${h.address} in ${leasePrefix(c)}`,
            `flanneld registers a lease when it starts: \`systemctl restart flanneld\` on ${h.name} and read its log`,
          ),
        )
    } else {
      const problems: string[] = []
      const l = mine.find((x) => x.subnet === own) ?? mine[0]
      const sub = cidr(l.subnet)
      if (!sub || !cidrContainsCidr(net, sub)) problems.push(`${l.subnet} is outside ${c.flannel.network}`)
      else if (sub.prefix !== c.flannel.subnetLen)
        problems.push(`${l.subnet} is a /${sub.prefix}, the network config says /${c.flannel.subnetLen}`)
      const sharing = (claimed.get(l.subnet) ?? []).filter((n) => n !== h.name)
      if (sharing.length > 0) problems.push(`${l.subnet} is also used by ${listing(sharing)} (two hosts, one subnet)`)
      if (c.flannel.backend.type !== 'host-gw' && l.backendType && l.backendType !== c.flannel.backend.type)
        problems.push(`backend ${l.backendType}, not ${c.flannel.backend.type}`)
      if (problems.length > 0)
        out.push(
          lr.fail(
            problems.join('; '),
            'stop flanneld on one of the hosts, delete its lease key and subnet file, and start it again to get a fresh subnet',
          ),
        )
      else if (mine.length > 1) {
        out.push(
          lr.warn(
            `${plural(mine.length, 'lease')} with PublicIP ${h.address}: ${mine.map((x) => x.subnet).join(', ')}; flanneld uses ${l.subnet}`,
            'delete the unused lease key (`etcdctl del`); it would expire 24 h after its last renewal anyway',
          ),
        )
      } else
        out.push(
          lr.ok(
            `${l.subnet} with PublicIP ${h.address} (${l.backendType ?? 'udp'}${l.vtepMac ? `, VTEP ${l.vtepMac}` : ''})`,
          ),
        )
    }
  }

  // vxlan device
  const dev = vxlanDevice(c)
  const b = c.flannel.backend
  if (dev && b.type === 'vxlan') {
    const vr = r('flannel.vxlan')
    const v = d.vxlan
    if (v) {
      const problems: string[] = []
      if (v.kind && v.kind !== 'vxlan') problems.push(`it is a ${v.kind} device`)
      if (v.vni !== undefined && v.vni !== b.vni) problems.push(`VNI ${v.vni}, not ${b.vni}`)
      if (v.local !== undefined && v.local !== h.address)
        problems.push(`local address ${v.local}, not ${h.address} (wrong interface)`)
      if (v.port !== undefined && v.port !== b.port) problems.push(`UDP port ${v.port}, not ${b.port}`)
      if (!v.up) problems.push('it is down')
      if (env?.mtu !== undefined && v.mtu !== env.mtu) problems.push(`MTU ${v.mtu}, the subnet file says ${env.mtu}`)
      out.push(
        problems.length === 0
          ? vr.ok(`${dev}: VNI ${v.vni}, port ${v.port}, local ${v.local}, MTU ${v.mtu}`)
          : vr.fail(
              `${dev}: ${problems.join('; ')}`,
              'delete the device (`ip link del ' +
                dev +
                '`) and restart flanneld so it recreates it from the network config',
            ),
      )
    } else {
      out.push(
        vr.fail(
          `${dev} does not exist`,
          'flanneld creates it when it starts: `systemctl restart flanneld` and read its log',
        ),
      )
    }
  }

  // Routes to every other flannel host's subnet
  if (leases) {
    const rr = r('flannel.routes')
    const others = flannelHostsExcept(c, h).flatMap((o) =>
      leases.filter((l) => l.publicIp === o.address).map((l) => ({host: o, lease: l})),
    )
    const missing: string[] = []
    for (const {host: o, lease: l} of others) {
      const route = d.routes.find((x) => x.dst === l.subnet)
      const viaDevice = dev && route?.dev === dev
      const viaHost = route?.gateway === o.address
      const good =
        b.type === 'vxlan' ? viaDevice || (b.directRouting && viaHost) : b.type === 'host-gw' ? viaHost : true
      if (!good)
        missing.push(
          `${l.subnet} (${o.name})${route ? `: route goes ${route.gateway ? `via ${route.gateway} ` : ''}dev ${route.dev}` : ''}`,
        )
    }

    if (b.type === 'udp') {
      const whole = d.routes.some((x) => x.dst === c.flannel.network && x.dev === 'flannel0')
      if (!whole) missing.push(`${c.flannel.network} via flannel0`)
    }

    if (missing.length > 0)
      out.push(
        rr.fail(
          `no route to ${missing.join(', ')}`,
          'flanneld adds a route per peer lease (every second it polls etcd): check that flanneld runs and its log for "Error adding route"',
        ),
      )
    else if (others.length === 0) out.push(rr.ok('no other flannel host has a lease'))
    else
      out.push(
        rr.ok(
          `routes to ${plural(others.length, 'peer subnet')}: ${others.map((x) => `${x.lease.subnet} (${x.host.name})`).join(', ')}`,
        ),
      )
  }

  return out
}

function flannelHostsExcept(c: Cluster, h: Host): Host[] {
  return flannelHosts(c).filter((o) => o.name !== h.name)
}
