/** Kernel settings kflan prepares: swap, SELinux, the sysctls, br_netfilter. */
import {kv, type Probe} from './probe.js'

export interface Swap {
  active: boolean
  devices: {path: string; type: string; sizeKb: number; usedKb: number}[]
}

/** /proc/swaps (pure). */
export function parseSwaps(text: string): Swap {
  const devices = text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && f[0].startsWith('/'))
    .map((f) => ({path: f[0], type: f[1], sizeKb: Number(f[2]), usedKb: Number(f[3] ?? 0) || 0}))
  return {active: devices.length > 0, devices}
}

export const swapProbe: Probe<Swap> = {
  id: 'swaps',
  sh: 'cat /proc/swaps 2>/dev/null',
  parse: (o) => parseSwaps(o.stdout),
}

export interface Selinux {
  present: boolean
  /** Current mode (getenforce, else /sys/fs/selinux/enforce; `disabled` with a config file only). */
  mode?: 'enforcing' | 'permissive' | 'disabled'
  /** SELINUX= in /etc/selinux/config. */
  configMode?: string
}

export function parseSelinux(text: string): Selinux {
  const se = kv(text)
  const present = se.getenforce !== undefined || se.enforce !== undefined || se.SELINUX !== undefined
  let mode: Selinux['mode']
  const ge = se.getenforce?.toLowerCase()
  if (ge === 'enforcing' || ge === 'permissive' || ge === 'disabled') mode = ge
  else if (se.enforce !== undefined) mode = se.enforce === '1' ? 'enforcing' : 'permissive'
  else if (present) mode = 'disabled' // config file but no selinuxfs: not active
  return {present, mode, configMode: se.SELINUX?.replace(/^["']|["']$/g, '').toLowerCase()}
}

export const selinuxProbe: Probe<Selinux> = {
  id: 'selinux',
  sh: 'if has getenforce; then echo "getenforce=$(getenforce 2>/dev/null)"; fi; if [ -r /sys/fs/selinux/enforce ]; then echo "enforce=$(cat /sys/fs/selinux/enforce)"; fi; if [ -r /etc/selinux/config ]; then grep -E "^SELINUX=" /etc/selinux/config; fi',
  parse: (o) => parseSelinux(o.stdout),
}

/** The sysctls kflan sets; undefined when the file is missing (true: the value is 1). */
export interface Sysctl {
  ipForward?: boolean
  bridgeNfCallIptables?: boolean
  bridgeNfCallIp6tables?: boolean
}

const SYSCTLS = {
  ipForward: 'net/ipv4/ip_forward',
  bridgeNfCallIptables: 'net/bridge/bridge-nf-call-iptables',
  bridgeNfCallIp6tables: 'net/bridge/bridge-nf-call-ip6tables',
} as const

export function parseSysctl(text: string): Sysctl {
  const r = kv(text)
  const out: Sysctl = {}
  for (const [k, path] of Object.entries(SYSCTLS) as [keyof Sysctl, string][])
    if (r[path] !== undefined) out[k] = r[path].trim() === '1'
  return out
}

export const sysctlProbe: Probe<Sysctl> = {
  id: 'sysctl',
  sh: `for k in ${Object.values(SYSCTLS).join(' ')}; do if [ -r /proc/sys/$k ]; then echo "$k=$(cat /proc/sys/$k)"; fi; done`,
  parse: (o) => parseSysctl(o.stdout),
}

export interface BrNetfilter {
  /** Loaded as a module, or built in (the bridge sysctls exist). */
  loaded: boolean
  /** /proc/sys/net/bridge exists. */
  procDir: boolean
  /** Listed in /proc/modules. */
  module: boolean
}

export function parseBrNetfilter(text: string): BrNetfilter {
  const l = text.split('\n')
  const module = l.includes('br_netfilter')
  return {loaded: module || l.includes('sysctl=1'), procDir: l.includes('procdir=1'), module}
}

export const brNetfilterProbe: Probe<BrNetfilter> = {
  id: 'br_netfilter',
  sh: 'if [ -d /proc/sys/net/bridge ]; then echo procdir=1; fi; if [ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo sysctl=1; fi; grep -E "^br_netfilter " /proc/modules 2>/dev/null | cut -d" " -f1',
  parse: (o) => parseBrNetfilter(o.stdout),
}
