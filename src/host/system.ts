/** The host's identity: OS release, kernel and architecture, hostname, systemd, the tools present. */
import {kv, type Probe} from './probe.js'

export type OsFamily = 'debian' | 'rhel' | 'other'
export interface OsRelease {
  id: string
  idLike: string[]
  versionId: string
  prettyName: string
  family: OsFamily
}

export function parseOsRelease(text: string): OsRelease {
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

export const osProbe: Probe<OsRelease> = {
  id: 'os-release',
  sh: 'cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null',
  parse: (o) => parseOsRelease(o.stdout),
}

/** `uname -m; uname -r`. */
export const unameProbe: Probe<{arch: string; kernel: string}> = {
  id: 'uname',
  sh: 'uname -m; uname -r',
  parse(o) {
    const [arch = '', kernel = ''] = o.stdout.split('\n')
    return {arch: arch.trim(), kernel: kernel.trim()}
  },
}

export const hostnameProbe: Probe<string> = {
  id: 'hostname',
  sh: 'hostname 2>/dev/null || cat /proc/sys/kernel/hostname',
  parse: (o) => o.stdout.trim().split('\n')[0] ?? '',
}

export interface Systemd {
  present: boolean
  running: boolean
  version?: number
}

export const systemdProbe: Probe<Systemd> = {
  id: 'systemd',
  sh: 'if [ -d /run/systemd/system ]; then echo running=1; else echo running=0; fi; systemctl --version 2>/dev/null | head -n1',
  parse(o) {
    const sd = o.stdout.split('\n')
    const v = /systemd (\d+)/.exec(sd.slice(1).join('\n'))
    return {present: Boolean(v), running: sd[0] === 'running=1', version: v ? Number(v[1]) : undefined}
  },
}

/** Tools the later phases rely on. */
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

export const toolsProbe: Probe<Record<string, boolean>> = {
  id: 'tools',
  sh: `for t in ${FACT_TOOLS.join(' ')}; do if has $t; then echo $t=1; else echo $t=0; fi; done`,
  parse(o) {
    const r = kv(o.stdout)
    return Object.fromEntries(FACT_TOOLS.map((t) => [t, r[t] === '1']))
  },
}
