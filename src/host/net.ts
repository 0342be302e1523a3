import type {Remote} from '../remote/ssh.js'

/**
 * The host's network as the kernel shows it: interfaces and addresses (docker0 among them),
 * IPv4 routes, the flannel VXLAN device's details, listening sockets.
 */
import {shq} from '../remote/shell.js'
import {type Probe, readProbe} from './probe.js'

export interface Interface {
  name: string
  state?: string
  mtu?: number
  mac?: string
  addresses: {family: 'inet' | 'inet6'; address: string; prefixLen: number; scope?: string}[]
}

/** `ip -j addr`, or (iproute2 without JSON) `#text` then `ip -o link` and `ip -o addr` lines (pure). */
export function parseIpAddr(text: string, warnings: string[] = []): Interface[] {
  const t = text.trim()
  if (t.startsWith('[')) {
    try {
      const arr = JSON.parse(t) as {
        ifname: string
        operstate?: string
        mtu?: number
        address?: string
        addr_info?: {family: string; local: string; prefixlen: number; scope?: string}[]
      }[]
      return arr.map((i) => ({
        name: i.ifname,
        state: i.operstate,
        mtu: i.mtu,
        mac: i.address,
        addresses: (i.addr_info ?? [])
          .filter((a) => a.family === 'inet' || a.family === 'inet6')
          .map((a) => ({
            family: a.family as 'inet' | 'inet6',
            address: a.local,
            prefixLen: a.prefixlen,
            scope: a.scope,
          })),
      }))
    } catch (error) {
      warnings.push(`ip -j addr: ${(error as Error).message}`)
      return []
    }
  }

  const byName = new Map<string, Interface>()
  const iface = (name: string) => byName.get(name) ?? byName.set(name, {name, addresses: []}).get(name)!
  for (const line of t.replace(/^#text\n?/, '').split('\n')) {
    // `ip -o link`: "2: eth0@if5: <BROADCAST,UP> mtu 1500 qdisc … state UP …"
    const l = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<[^>]*>\s+mtu\s+(\d+)(?:.*?\bstate\s+(\S+))?/.exec(line)
    if (l) {
      Object.assign(iface(l[1]), {mtu: Number(l[2]), ...(l[3] ? {state: l[3]} : {})})
      continue
    }

    // `ip -o addr`: "2: eth0    inet 10.0.2.15/24 brd … scope global eth0\ …"
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+(inet6?)\s+([0-9a-fA-F.:]+)\/(\d+)(?:.*?\bscope\s+(\S+))?/.exec(line)
    if (m)
      iface(m[1]).addresses.push({
        family: m[2] as 'inet' | 'inet6',
        address: m[3],
        prefixLen: Number(m[4]),
        scope: m[5],
      })
  }

  return [...byName.values()]
}

/** Every interface, or only `dev` (then a missing device is an empty list). */
export function interfacesProbe(opts: {dev?: string} = {}): Probe<Interface[]> {
  const d = opts.dev ? ` show dev ${shq(opts.dev)}` : ''
  const l = opts.dev ? ` show dev ${shq(opts.dev)}` : ''
  return {
    id: 'ip',
    sh: `ip -j addr${d} 2>/dev/null || { echo "#text"; ip -o link${l} 2>/dev/null; ip -o addr${d} 2>/dev/null; }`,
    parse: (o, ctx) => parseIpAddr(o.stdout, ctx.warnings),
  }
}

/** The interface carrying `address`, e.g. to find which one the inventory's address is on. */
export function interfaceWithAddress(interfaces: Interface[], address: string): Interface | undefined {
  return interfaces.find((i) => i.addresses.some((a) => a.address === address))
}

/** docker's bridge: docker0's IPv4 address and MTU. */
export interface Bridge {
  address?: string
  prefixLen?: number
  mtu?: number
  /** `address/prefixLen`, as flannel's FLANNEL_SUBNET spells a gateway. */
  cidr?: string
}

/** docker0 from the interfaces (undefined: no docker0) (pure). */
export function docker0Of(interfaces: Interface[]): Bridge | undefined {
  const i = interfaces.find((x) => x.name === 'docker0')
  if (!i) return undefined
  const a = i.addresses.find((x) => x.family === 'inet')
  return {
    address: a?.address,
    prefixLen: a?.prefixLen,
    mtu: i.mtu,
    cidr: a ? `${a.address}/${a.prefixLen}` : undefined,
  }
}

/** docker0 as it is now, read on its own (a re-read while docker restarts); undefined: no docker0. */
export async function readDocker0(remote: Remote): Promise<Bridge | undefined> {
  return docker0Of(await readProbe(remote, interfacesProbe({dev: 'docker0'})))
}

export interface Route {
  dst: string
  gateway?: string
  dev?: string
  flags: string[]
}

/** `ip -j -4 route show` (or `#text` and its text form) (pure). */
export function parseRoutes(text: string): Route[] {
  const t = text.trim()
  if (t.startsWith('[')) {
    try {
      const arr = JSON.parse(t) as {dst: string; gateway?: string; dev?: string; flags?: string[]}[]
      return arr.map((r) => ({dst: r.dst, gateway: r.gateway, dev: r.dev, flags: r.flags ?? []}))
    } catch {
      return []
    }
  }

  const out: Route[] = []
  for (const line of t.replace(/^#text\n?/, '').split('\n')) {
    const f = line.trim().split(/\s+/)
    if (!f[0]) continue
    const at = (k: string) => {
      const i = f.indexOf(k)
      return i === -1 ? undefined : f[i + 1]
    }

    out.push({dst: f[0], gateway: at('via'), dev: at('dev'), flags: f.includes('onlink') ? ['onlink'] : []})
  }

  return out
}

export const routesProbe: Probe<Route[]> = {
  id: 'routes',
  sh: 'ip -j -4 route show 2>/dev/null || { echo "#text"; ip -4 route show 2>/dev/null; }',
  parse: (o) => parseRoutes(o.stdout),
}

export interface VxlanLink {
  name: string
  mtu?: number
  up: boolean
  kind?: string
  vni?: number
  local?: string
  port?: number
}

/** `ip -j -d link show dev DEV` (pure). */
export function parseVxlan(text: string): VxlanLink | undefined {
  const t = text.trim()
  if (!t.startsWith('[')) return undefined
  try {
    const [l] = JSON.parse(t) as {
      ifname: string
      mtu?: number
      flags?: string[]
      linkinfo?: {info_kind?: string; info_data?: {id?: number; local?: string; port?: number}}
    }[]
    if (!l) return undefined
    const d = l.linkinfo?.info_data
    return {
      name: l.ifname,
      mtu: l.mtu,
      up: (l.flags ?? []).includes('UP'),
      kind: l.linkinfo?.info_kind,
      vni: d?.id,
      local: d?.local,
      port: d?.port,
    }
  } catch {
    return undefined
  }
}

export function vxlanProbe(dev: string): Probe<VxlanLink | undefined> {
  return {id: 'vxlan', sh: `ip -j -d link show dev ${shq(dev)} 2>/dev/null`, parse: (o) => parseVxlan(o.stdout)}
}

export interface ListeningSocket {
  proto: 'tcp' | 'udp'
  address: string
  port: number
  /** The processes holding the socket (`ss -p`, root only): name and PID. */
  processes?: {name: string; pid: number}[]
}

/** `ss -Hlntup` (pure). */
export function parseSs(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 5 || (f[0] !== 'tcp' && f[0] !== 'udp')) continue
    const local = f[4]
    const i = local.lastIndexOf(':')
    if (i === -1) continue
    const port = Number(local.slice(i + 1))
    if (!Number.isInteger(port)) continue
    // users:(("flanneld",pid=812,fd=9),("x",pid=9,fd=3)) when ss ran with -p as root.
    const processes = [...line.matchAll(/\("([^"]*)",pid=(\d+)/g)].map((m) => ({name: m[1], pid: Number(m[2])}))
    out.push({
      proto: f[0],
      address: local
        .slice(0, i)
        .replaceAll(/^\[|\]$/g, '')
        .replace(/%.*$/, ''),
      port,
      ...(processes.length > 0 ? {processes} : {}),
    })
  }

  return out
}

export const listeningProbe: Probe<ListeningSocket[]> = {
  id: 'listen',
  sh: 'if has ss; then ss -Hlntup 2>/dev/null; else echo "#no-ss"; fi',
  parse(o, ctx) {
    if (o.stdout.startsWith('#no-ss')) ctx.warnings.push('ss is not installed: listening ports unknown')
    return parseSs(o.stdout)
  },
}
