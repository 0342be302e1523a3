/**
 * Host facts in one round trip: a single script prints sections, a pure function parses them.
 * Every probe tolerates a missing tool (minimal images lack ss, iptables, getenforce, …).
 */
import {performance} from 'node:perf_hooks'

import type {Remote} from './ssh.js'

import {shq} from './shell.js'

export type OsFamily = 'debian' | 'rhel' | 'other'

export interface UnitState {
  /** `loaded`, `not-found`, `masked`, … ('' when systemctl is missing). */
  loadState: string
  /** `active`, `inactive`, `failed`, … */
  activeState: string
  subState?: string
  /** systemd's Result: `success`, `start-limit-hit`, `exit-code`, … */
  result?: string
  /** The main process (0 or undefined when not running). */
  mainPid?: number
  unitFileState?: string
  fragmentPath?: string
  exists: boolean
  active: boolean
}

export interface Interface {
  name: string
  state?: string
  mtu?: number
  mac?: string
  addresses: {family: 'inet' | 'inet6'; address: string; prefixLen: number; scope?: string}[]
}

export interface ListeningSocket {
  proto: 'tcp' | 'udp'
  address: string
  port: number
  /** The processes holding the socket (`ss -p`, root only): name and PID. */
  processes?: {name: string; pid: number}[]
}

export interface HostFacts {
  hostname: string
  os: {id: string; idLike: string[]; versionId: string; prettyName: string; family: OsFamily}
  kernel: string
  /** `uname -m`: x86_64, aarch64, … */
  arch: string
  systemd: {present: boolean; running: boolean; version?: number}
  swap: {active: boolean; devices: {path: string; type: string; sizeKb: number; usedKb: number}[]}
  selinux: {
    present: boolean
    /** Current mode (getenforce, else /sys/fs/selinux/enforce). */
    mode?: 'enforcing' | 'permissive' | 'disabled'
    /** SELINUX= in /etc/selinux/config. */
    configMode?: string
  }
  firewalld: {installed: boolean; active: boolean; state: string}
  sysctl: {ipForward?: boolean; bridgeNfCallIptables?: boolean; bridgeNfCallIp6tables?: boolean}
  brNetfilter: {loaded: boolean; procDir: boolean; module: boolean}
  docker: {
    installed: boolean
    dockerdPath?: string
    version?: string
    /** docker.service's ExecStart command line (argv joined), as systemd resolved it. */
    execStart?: string
    unit: UnitState & {execStart?: string; dropInPaths: string[]}
  }
  etcd: {dataDir: string; exists: boolean; nonEmpty: boolean; hasMember: boolean; unit: UnitState}
  flanneld: {unit: UnitState}
  listening: ListeningSocket[]
  /** Convenience: something already listens on etcd's / vxlan's ports. */
  ports: {tcp2379: boolean; tcp2380: boolean; udp8472: boolean}
  interfaces: Interface[]
  clock: {
    /** Remote wall clock when the script started, ms since epoch. */
    remoteMs: number
    /** remote − local, ms; positive when the host is ahead. */
    skewMs: number
    /** ± bound on skewMs from the round-trip time. */
    uncertaintyMs: number
  }
  iptables: {present: boolean; forwardPolicy?: string}
  /** Tools the later phases rely on, present or not. */
  tools: Record<string, boolean>
  /** Total time of the facts round trip, ms. */
  gatherMs: number
  /** Things that could not be parsed (never fatal). */
  warnings: string[]
}

export const FACT_TOOLS = [
  'sha256sum',
  'base64',
  'tar',
  'ss',
  'ip',
  'iptables',
  'modprobe',
  'sysctl',
  'systemctl',
  'curl',
]

/** The facts script (pure). `etcdDataDir` is checked for an existing member. */
export function factsScript(opts: {etcdDataDir: string}): string {
  const d = shq(opts.etcdDataDir)
  return [
    'LC_ALL=C; export LC_ALL',
    `s() { printf '\\n@@kflan:%s@@\\n' "$1"; }`,
    'has() { command -v "$1" >/dev/null 2>&1; }',
    's clock; date +%s.%N',
    's os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null',
    's uname; uname -m; uname -r',
    's hostname; hostname 2>/dev/null || cat /proc/sys/kernel/hostname',
    's systemd; if [ -d /run/systemd/system ]; then echo running=1; else echo running=0; fi; systemctl --version 2>/dev/null | head -n1',
    's swaps; cat /proc/swaps 2>/dev/null',
    's selinux; if has getenforce; then echo "getenforce=$(getenforce 2>/dev/null)"; fi; if [ -r /sys/fs/selinux/enforce ]; then echo "enforce=$(cat /sys/fs/selinux/enforce)"; fi; if [ -r /etc/selinux/config ]; then grep -E "^SELINUX=" /etc/selinux/config; fi',
    's firewalld; if has firewall-cmd || [ -f /usr/lib/systemd/system/firewalld.service ] || [ -f /lib/systemd/system/firewalld.service ]; then echo installed=1; fi; echo "state=$(systemctl is-active firewalld 2>/dev/null)"',
    's sysctl; for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do if [ -r /proc/sys/$k ]; then echo "$k=$(cat /proc/sys/$k)"; fi; done',
    's br_netfilter; if [ -d /proc/sys/net/bridge ]; then echo procdir=1; fi; grep -E "^br_netfilter " /proc/modules 2>/dev/null | cut -d" " -f1',
    's docker; echo "dockerd=$(command -v dockerd 2>/dev/null)"; if has dockerd; then dockerd --version 2>/dev/null | head -n1; fi',
    's docker-unit; systemctl show docker.service -p LoadState -p ActiveState -p SubState -p Result -p MainPID -p UnitFileState -p ExecStart -p FragmentPath -p DropInPaths 2>/dev/null',
    's units; systemctl show etcd.service flanneld.service -p Id -p LoadState -p ActiveState -p SubState -p Result -p MainPID -p UnitFileState -p FragmentPath 2>/dev/null',
    `s etcd-data; if [ -d ${d} ]; then echo exists=1; if [ -d ${d}/member ]; then echo member=1; fi; if [ -n "$(ls -A ${d} 2>/dev/null)" ]; then echo nonempty=1; fi; fi`,
    's listen; if has ss; then ss -Hlntup 2>/dev/null; else echo "#no-ss"; fi',
    's ip; ip -j addr 2>/dev/null || { echo "#text"; ip -o addr 2>/dev/null; }',
    's iptables; if has iptables; then if has timeout; then timeout 5 iptables -S FORWARD 2>&1 | head -n1; else iptables -S FORWARD 2>&1 | head -n1; fi; else echo "#missing"; fi',
    `s tools; for t in ${FACT_TOOLS.join(' ')}; do if has $t; then echo $t=1; else echo $t=0; fi; done`,
    's end',
    '',
  ].join('\n')
}

/** Splits the script's output into sections (pure). */
export function splitSections(out: string): Map<string, string> {
  const m = new Map<string, string>()
  const re = /^@@kflan:([a-z0-9_-]+)@@$/gm
  const marks: {name: string; start: number; end: number}[] = []
  for (let x = re.exec(out); x; x = re.exec(out)) marks.push({name: x[1], start: x.index, end: x.index + x[0].length})
  for (const [i, mk] of marks.entries()) {
    const body = out.slice(mk.end + 1, i + 1 < marks.length ? marks[i + 1].start : out.length)
    m.set(mk.name, body.replace(/\n+$/, ''))
  }

  return m
}

function kv(text: string, sep = '='): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf(sep)
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim()
  }

  return out
}

export function parseOsRelease(text: string): HostFacts['os'] {
  const r = kv(text)
  const unq = (s: string | undefined) => (s ?? '').replace(/^(["'])(.*)\1$/, '$2')
  const id = unq(r.ID).toLowerCase()
  const idLike = unq(r.ID_LIKE).toLowerCase().split(/\s+/).filter(Boolean)
  const all = [id, ...idLike]
  const family: OsFamily = all.some((x) => x === 'debian' || x === 'ubuntu')
    ? 'debian'
    : all.some((x) => ['almalinux', 'amzn', 'centos', 'fedora', 'ol', 'rhel', 'rocky'].includes(x))
      ? 'rhel'
      : 'other'
  return {id, idLike, versionId: unq(r.VERSION_ID), prettyName: unq(r.PRETTY_NAME), family}
}

/** Parses `systemctl show` output; several units are separated by blank lines. */
export function parseSystemctlShow(text: string): Record<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => kv(block))
    .filter((r) => Object.keys(r).length > 0)
}

function unitState(r: Record<string, string> | undefined): UnitState {
  const loadState = r?.LoadState ?? ''
  const activeState = r?.ActiveState ?? ''
  return {
    loadState,
    activeState,
    subState: r?.SubState || undefined,
    result: r?.Result || undefined,
    mainPid: Number(r?.MainPID ?? 0) || undefined,
    unitFileState: r?.UnitFileState || undefined,
    fragmentPath: r?.FragmentPath || undefined,
    exists: loadState !== '' && loadState !== 'not-found',
    active: activeState === 'active' || activeState === 'reloading' || activeState === 'activating',
  }
}

/** `{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// ; ignore_errors=no ; … }` → the argv. */
export function parseExecStart(v: string | undefined): string | undefined {
  if (!v) return undefined
  const m = /argv\[\]=(.*?) ;/.exec(v)
  return m ? m[1].trim() : v.trim() || undefined
}

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

  // `ip -o addr` (iproute2 without JSON): "2: eth0    inet 10.0.2.15/24 brd … scope global eth0\ …"
  const byName = new Map<string, Interface>()
  for (const line of t.split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+(inet6?)\s+([0-9a-fA-F.:]+)\/(\d+)(?:.*?\bscope\s+(\S+))?/.exec(line)
    if (!m) continue
    const iface = byName.get(m[1]) ?? {name: m[1], addresses: []}
    iface.addresses.push({family: m[2] as 'inet' | 'inet6', address: m[3], prefixLen: Number(m[4]), scope: m[5]})
    byName.set(m[1], iface)
  }

  return [...byName.values()]
}

function parseSwaps(text: string): HostFacts['swap'] {
  const devices = text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[0].startsWith('/'))
    .map((f) => ({path: f[0], type: f[1], sizeKb: Number(f[2]), usedKb: Number(f[3])}))
  return {active: devices.length > 0, devices}
}

/** Clock skew from the remote `date +%s.%N` and the local send/receive times (pure). */
export function computeSkew(remoteEpoch: string, localSendMs: number, localRecvMs: number): HostFacts['clock'] {
  const remoteMs = Number(remoteEpoch.trim().replace(/N$/, '0')) * 1000
  const mid = (localSendMs + localRecvMs) / 2
  return {remoteMs, skewMs: Math.round(remoteMs - mid), uncertaintyMs: Math.ceil((localRecvMs - localSendMs) / 2)}
}

/** Parses the facts script's output (pure). Times are local wall-clock ms around the exec. */
export function parseFacts(
  out: string,
  opts: {etcdDataDir: string; localSendMs: number; localRecvMs: number},
): HostFacts {
  const warnings: string[] = []
  const sec = splitSections(out)
  const get = (n: string) => sec.get(n) ?? ''
  if (!sec.has('end')) warnings.push('facts output is incomplete (no end marker)')

  const [arch = '', kernel = ''] = get('uname').split('\n')
  const sd = get('systemd').split('\n')
  const sdVer = /systemd (\d+)/.exec(sd.slice(1).join('\n'))
  const systemd = {
    present: Boolean(sdVer),
    running: sd[0] === 'running=1',
    version: sdVer ? Number(sdVer[1]) : undefined,
  }

  const se = kv(get('selinux'))
  const selinuxPresent = se.getenforce !== undefined || se.enforce !== undefined || se.SELINUX !== undefined
  let mode: HostFacts['selinux']['mode']
  const ge = se.getenforce?.toLowerCase()
  if (ge === 'enforcing' || ge === 'permissive' || ge === 'disabled') mode = ge
  else if (se.enforce !== undefined) mode = se.enforce === '1' ? 'enforcing' : 'permissive'
  else if (selinuxPresent) mode = 'disabled' // config file but no selinuxfs: not active
  const selinux: HostFacts['selinux'] = {
    present: selinuxPresent,
    mode,
    configMode: se.SELINUX?.replace(/^["']|["']$/g, '').toLowerCase(),
  }

  const fw = kv(get('firewalld'))
  const firewalld = {installed: fw.installed === '1', active: fw.state === 'active', state: fw.state ?? ''}

  const sc = kv(get('sysctl'))
  const bool = (v: string | undefined) => (v === undefined ? undefined : v.trim() === '1')
  const sysctl = {
    ipForward: bool(sc['net/ipv4/ip_forward']),
    bridgeNfCallIptables: bool(sc['net/bridge/bridge-nf-call-iptables']),
    bridgeNfCallIp6tables: bool(sc['net/bridge/bridge-nf-call-ip6tables']),
  }

  const brl = get('br_netfilter').split('\n')
  const procDir = brl.includes('procdir=1')
  const module = brl.includes('br_netfilter')
  // br_netfilter can be built in (no /proc/modules line): the bridge sysctls then exist.
  const brNetfilter = {loaded: module || sysctl.bridgeNfCallIptables !== undefined, procDir, module}

  const dk = get('docker').split('\n')
  const dockerdPath = kv(dk[0] ?? '').dockerd || undefined
  const dockerVersion = /version ([0-9][^\s,]*)/i.exec(dk.slice(1).join('\n'))?.[1]
  const du = parseSystemctlShow(get('docker-unit'))[0]
  const dockerUnit = {
    ...unitState(du),
    execStart: parseExecStart(du?.ExecStart),
    dropInPaths: (du?.DropInPaths ?? '').split(/\s+/).filter(Boolean),
  }
  const docker = {
    installed: Boolean(dockerdPath) || dockerUnit.exists,
    dockerdPath,
    version: dockerVersion,
    execStart: dockerUnit.execStart,
    unit: dockerUnit,
  }

  const units = parseSystemctlShow(get('units'))
  const unitById = (id: string) => units.find((u) => u.Id === id)

  const ed = kv(get('etcd-data'))
  const listenText = get('listen')
  if (listenText.startsWith('#no-ss')) warnings.push('ss is not installed: listening ports unknown')
  const listening = parseSs(listenText)
  const has = (proto: 'tcp' | 'udp', port: number) => listening.some((l) => l.proto === proto && l.port === port)

  const ipText = get('ip').replace(/^#text\n?/, '')
  const interfaces = parseIpAddr(ipText, warnings)

  const ipt = get('iptables').trim()
  const iptables = ipt.startsWith('#missing')
    ? {present: false}
    : {present: true, forwardPolicy: /^-P FORWARD (\S+)/.exec(ipt)?.[1]}
  if (iptables.present && !iptables.forwardPolicy && ipt) warnings.push(`iptables -S FORWARD: ${ipt.split('\n')[0]}`)

  const toolsKv = kv(get('tools'))
  const tools: Record<string, boolean> = {}
  for (const t of FACT_TOOLS) tools[t] = toolsKv[t] === '1'

  const clockText = get('clock').trim()
  const clock = clockText
    ? computeSkew(clockText, opts.localSendMs, opts.localRecvMs)
    : (warnings.push('no clock reading'), {remoteMs: Number.NaN, skewMs: Number.NaN, uncertaintyMs: Number.NaN})

  return {
    hostname: get('hostname').trim().split('\n')[0] ?? '',
    os: parseOsRelease(get('os-release')),
    kernel: kernel.trim(),
    arch: arch.trim(),
    systemd,
    swap: parseSwaps(get('swaps')),
    selinux,
    firewalld,
    sysctl,
    brNetfilter,
    docker,
    etcd: {
      dataDir: opts.etcdDataDir,
      exists: ed.exists === '1',
      nonEmpty: ed.nonempty === '1',
      hasMember: ed.member === '1',
      unit: unitState(unitById('etcd.service')),
    },
    flanneld: {unit: unitState(unitById('flanneld.service'))},
    listening,
    ports: {tcp2379: has('tcp', 2379), tcp2380: has('tcp', 2380), udp8472: has('udp', 8472)},
    interfaces,
    clock,
    iptables,
    tools,
    gatherMs: opts.localRecvMs - opts.localSendMs,
    warnings,
  }
}

/** Gathers facts in one round trip (as root: iptables needs it). */
export async function gatherFacts(remote: Remote, opts: {etcdDataDir?: string} = {}): Promise<HostFacts> {
  const etcdDataDir = opts.etcdDataDir ?? '/var/lib/etcd'
  const script = factsScript({etcdDataDir})
  const sendWall = Date.now()
  const t0 = performance.now()
  const r = await remote.run('sh -s', {stdin: script})
  const elapsed = performance.now() - t0
  return parseFacts(r.stdout, {etcdDataDir, localSendMs: sendWall, localRecvMs: sendWall + elapsed})
}

/** Addresses of an interface family on the host, e.g. to find which interface carries `address`. */
export function interfaceWithAddress(facts: HostFacts, address: string): Interface | undefined {
  return facts.interfaces.find((i) => i.addresses.some((a) => a.address === address))
}
