import type {HostFacts} from '../host/facts.js'
/**
 * The preflight checks (pure, kubeadm style): each failed check is `[ERROR Name]: message` and
 * `--ignore-preflight-errors=Name` downgrades it, except the guard checks. The phase that runs
 * them and prepares the host is preflight.ts.
 */
import type {Cluster, Host} from '../inventory/model.js'

import {vxlanDevice} from '../cluster/flannel.js'
import {InputError} from '../errors.js'
import {interfaceWithAddress} from '../host/net.js'
import {intToIp, ipToInt} from '../inventory/net.js'

export interface Finding {
  name: string
  severity: 'error' | 'warning'
  message: string
}

/**
 * Checks that stand between the inventory and the files kflan writes: the host address and the
 * interface are rendered into etcd's and flanneld's units. They cannot be downgraded (not even by
 * `all`), and no hint suggests it: the fix is in the inventory or on the host.
 */
export const GUARD_CHECKS = ['HostAddress', 'Interface'] as const
const ERROR_CHECKS = ['OS', 'Systemd', 'Arch', 'Tools', 'Docker', 'Iptables'] as const

/** Every preflight error check `--ignore-preflight-errors` may name for this cluster (pure). */
export function ignorableChecks(c: Cluster): string[] {
  const ports = [
    c.etcd.clientPort,
    c.etcd.peerPort,
    ...(c.flannel.backend.type === 'host-gw' ? [] : [c.flannel.backend.port]),
  ]
  return [...ERROR_CHECKS, ...[...new Set(ports)].map((p) => `Port-${p}`)]
}

export const isGuard = (name: string) => (GUARD_CHECKS as readonly string[]).includes(name)

/** The checks that must pass before kflan changes anything on a host (pure). */
export function preflightChecks(c: Cluster, h: Host, f: HostFacts): Finding[] {
  const out: Finding[] = []
  const error = (name: string, message: string) => out.push({name, severity: 'error', message})
  const warning = (name: string, message: string) => out.push({name, severity: 'warning', message})
  if (f.os.family === 'other')
    error(
      'OS',
      `unsupported OS "${f.os.prettyName || f.os.id}": kflan supports the Debian/Ubuntu and RHEL/CentOS/Rocky families`,
    )
  if (!f.systemd.running)
    error('Systemd', 'systemd is not running: kflan runs etcd, flanneld and docker as systemd units')
  if (f.arch !== 'x86_64' && /amd64/.test(`${c.etcd.tarball} ${c.flannel.tarball}`)) {
    error('Arch', `host is ${f.arch} but the release tarballs are linux-amd64`)
  }

  const own = interfaceWithAddress(f.interfaces, h.address)
  if (own) {
    const a = own.addresses.find((x) => x.address === h.address)!
    const edge = subnetEdge(h.address, a.prefixLen)
    if (edge)
      error(
        'HostAddress',
        `${h.address} (the inventory address) is the ${edge} of ${own.name}'s subnet ${networkOf(h.address, a.prefixLen)}/${a.prefixLen}: no host can use it`,
      )
  } else {
    const have = f.interfaces.flatMap((i) =>
      i.addresses.filter((a) => a.family === 'inet').map((a) => `${i.name} ${a.address}`),
    )
    error(
      'HostAddress',
      `${h.address} (the inventory address) is not on any interface; the host has ${have.join(', ') || 'no IPv4 address'}`,
    )
  }

  if (h.interface && h.roles.flannel && !f.interfaces.some((i) => i.name === h.interface)) {
    error(
      'Interface',
      `interface ${h.interface} (flanneld --iface) does not exist; the host has ${f.interfaces.map((i) => i.name).join(', ')}`,
    )
  }

  const missingTools = ['sha256sum', 'base64', 'tar', 'ip', 'systemctl'].filter((t) => f.tools[t] === false)
  if (missingTools.length > 0) error('Tools', `missing commands: ${missingTools.join(', ')}`)
  if (h.roles.flannel && c.docker.enabled && !f.docker.installed) {
    error(
      'Docker',
      'docker is not installed on this flannel host: install it from the distribution (docker.io, docker-ce) first, or set docker.enabled: false',
    )
  }

  if (h.roles.flannel && f.tools.iptables === false)
    error('Iptables', 'iptables is not installed (flanneld and docker need it)')
  if (h.roles.etcd && !f.etcd.unit.active) {
    const tcp = (port: number) => f.listening.some((s) => s.proto === 'tcp' && s.port === port)
    for (const port of [c.etcd.clientPort, c.etcd.peerPort]) {
      if (tcp(port)) error(`Port-${port}`, `TCP port ${port} is already in use, but etcd.service is not running`)
    }

    if (f.etcd.hasMember && !f.etcd.unit.exists) {
      warning(
        'ExistingEtcdData',
        `${f.etcd.dataDir} already holds etcd member data (left by an earlier cluster, or by \`kflan reset\` without --purge-data): etcd will reuse it`,
      )
    }
  }

  const b = c.flannel.backend
  if (h.roles.flannel && b.type !== 'host-gw' && !f.flanneld.unit.active) {
    // A stopped flanneld leaves its vxlan device, whose kernel socket keeps the port (no process
    // owns it): that is flannel's own, not a conflict.
    const dev = vxlanDevice(c)
    const kernelVxlan = dev !== undefined && f.interfaces.some((i) => i.name === dev)
    const taken = f.listening.filter(
      (s) => s.proto === 'udp' && s.port === b.port && !(kernelVxlan && (s.processes ?? []).length === 0),
    )
    if (taken.length > 0)
      error(`Port-${b.port}`, `UDP port ${b.port} (flannel ${b.type}) is already in use, but flanneld is not running`)
  }

  const hz = c.flannel.healthzPort
  if (h.roles.flannel && hz > 0) {
    // flanneld panics when its healthz port is taken. kflan's own running flanneld may hold it
    // (ss -p names the process when it runs as root; without that, a running flanneld is trusted).
    const own = f.flanneld.unit.active ? f.flanneld.unit.mainPid : undefined
    const holders = f.listening.filter((l) => l.proto === 'tcp' && l.port === hz)
    const foreign = holders.filter((l) =>
      l.processes ? !l.processes.some((p) => p.pid === own) : !f.flanneld.unit.active,
    )
    if (foreign.length > 0) {
      const who = [...new Set(foreign.flatMap((l) => l.processes ?? []).map((p) => `${p.name} (pid ${p.pid})`))]
      error(
        `Port-${hz}`,
        `TCP port ${hz} (flanneld --healthz-port) is already in use${who.length > 0 ? ` by ${who.join(', ')}` : ''}; flanneld would panic at start`,
      )
    }
  }

  return out
}

/** The network address of `ip`/`prefix` (dotted). */
function networkOf(ip: string, prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xff_ff_ff_ff << (32 - prefix)) >>> 0
  return intToIp((ipToInt(ip) & mask) >>> 0)
}

/** 'network address' or 'broadcast address' when `ip` is one of its subnet (prefixes up to /30). */
export function subnetEdge(ip: string, prefix: number): string | undefined {
  if (prefix > 30) return undefined
  const n = ipToInt(ip)
  const mask = prefix === 0 ? 0 : (0xff_ff_ff_ff << (32 - prefix)) >>> 0
  if ((n & mask) >>> 0 === n) return 'network address'
  if ((n | ~mask) >>> 0 === n) return 'broadcast address'
  return undefined
}

/**
 * `--ignore-preflight-errors=Docker,Port-2379` → the lower-cased names (or `all`). A name that is
 * no check of this cluster, or a check that cannot be ignored, is an input error listing the valid
 * names (exit 2, before anything is issued or contacted).
 */
export function parseIgnored(flag: string | undefined, c: Cluster): Set<string> {
  const names = (flag ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const valid = ignorableChecks(c)
  const byLower = new Map(valid.map((v) => [v.toLowerCase(), v]))
  for (const n of names) {
    if (n.toLowerCase() === 'all' || byLower.has(n.toLowerCase())) continue
    const guard = GUARD_CHECKS.find((g) => g.toLowerCase() === n.toLowerCase())
    if (guard) {
      throw new InputError(
        `--ignore-preflight-errors: ${guard} cannot be ignored: it checks a value kflan writes into etcd's and flanneld's units`,
        {
          hint:
            guard === 'HostAddress'
              ? 'set hosts[].address to the address the host has (`ip -4 addr`)'
              : 'set hosts[].interface (or flannel.interface) to an interface the host has, or leave it out',
        },
      )
    }

    throw new InputError(`--ignore-preflight-errors: ${JSON.stringify(n)} is not a preflight check`, {
      hint: `valid names: ${valid.join(', ')}, or all`,
    })
  }

  return new Set(names.map((n) => n.toLowerCase()))
}

/**
 * What to do about failed checks (pure). Skipping is offered only for checks that may be skipped;
 * the guard checks (host address, interface) are fixed in the inventory or on the host.
 */
export function preflightHint(errors: Finding[]): string {
  const guards = errors.filter((e) => isGuard(e.name))
  const skippable = errors.filter((e) => !isGuard(e.name)).map((e) => e.name)
  const parts: string[] = []
  if (guards.length > 0) {
    parts.push(
      `fix ${[...new Set(guards.map((g) => (g.name === 'HostAddress' ? 'hosts[].address' : 'hosts[].interface (or flannel.interface)')))].join(' and ')} in the inventory to match the host (these values are written into etcd's and flanneld's units; the check cannot be skipped)`,
    )
  }

  if (skippable.length > 0)
    parts.push(`fix the host, or skip a check with --ignore-preflight-errors=${[...new Set(skippable)].join(',')}`)
  return parts.join('; ')
}
