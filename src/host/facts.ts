/**
 * init's and join's facts of a host (also the common facts reset starts from): the probes they
 * need, composed into one script, read in one round trip (src/engine/connect.ts).
 * Every probe tolerates a missing tool (minimal images lack ss, iptables, getenforce, …).
 */
import type {Remote} from '../remote/ssh.js'

import {type Clock, clockProbe} from './clock.js'
import {dockerdProbe} from './docker.js'
import {type EtcdData, etcdDataProbe} from './etcd.js'
import {type Firewalld, firewalldProbe} from './firewalld.js'
import {chainPolicy, iptablesProbe} from './iptables.js'
import {
  type BrNetfilter,
  brNetfilterProbe,
  type Selinux,
  selinuxProbe,
  type Swap,
  swapProbe,
  type Sysctl,
  sysctlProbe,
} from './kernel.js'
import {type Interface, interfacesProbe, listeningProbe, type ListeningSocket} from './net.js'
import {parseProbes, probeScript, type Results, runProbes} from './probe.js'
import {hostnameProbe, osProbe, type OsRelease, type Systemd, systemdProbe, toolsProbe, unameProbe} from './system.js'
import {unitsProbe, type UnitState} from './units.js'

export interface HostFacts {
  hostname: string
  os: OsRelease
  kernel: string
  /** `uname -m`: x86_64, aarch64, … */
  arch: string
  systemd: Systemd
  swap: Swap
  selinux: Selinux
  firewalld: Firewalld
  sysctl: Sysctl
  brNetfilter: BrNetfilter
  docker: {
    installed: boolean
    dockerdPath?: string
    version?: string
    /** docker.service's ExecStart command line (argv joined), as systemd resolved it. */
    execStart?: string
    unit: UnitState
  }
  etcd: EtcdData & {unit: UnitState}
  flanneld: {unit: UnitState}
  listening: ListeningSocket[]
  /** Convenience: something already listens on etcd's / vxlan's ports. */
  ports: {tcp2379: boolean; tcp2380: boolean; udp8472: boolean}
  interfaces: Interface[]
  clock: Clock
  iptables: {present: boolean; forwardPolicy?: string}
  /** Tools the later phases rely on, present or not. */
  tools: Record<string, boolean>
  /** Total time of the facts round trip, ms. */
  gatherMs: number
  /** Things that could not be parsed (never fatal). */
  warnings: string[]
}

const UNITS = ['docker.service', 'etcd.service', 'flanneld.service']

/** The probes of init's facts; `etcdDataDir` is checked for an existing member. */
export function factProbes(opts: {etcdDataDir: string}) {
  return {
    clock: clockProbe,
    os: osProbe,
    uname: unameProbe,
    hostname: hostnameProbe,
    systemd: systemdProbe,
    swap: swapProbe,
    selinux: selinuxProbe,
    firewalld: firewalldProbe(),
    sysctl: sysctlProbe,
    brNetfilter: brNetfilterProbe,
    dockerd: dockerdProbe,
    units: unitsProbe(UNITS),
    etcdData: etcdDataProbe(opts.etcdDataDir),
    listening: listeningProbe,
    interfaces: interfacesProbe(),
    iptables: iptablesProbe('filter'),
    tools: toolsProbe,
  }
}

type FactResults = Results<ReturnType<typeof factProbes>> & {warnings: string[]}

/** The probes' results → HostFacts (pure). */
export function toHostFacts(r: FactResults, gatherMs: number): HostFacts {
  const warnings = [...r.warnings]
  const has = (proto: 'tcp' | 'udp', port: number) => r.listening.some((l) => l.proto === proto && l.port === port)
  const ipt = r.iptables
  const iptables = ipt ? {present: true, forwardPolicy: chainPolicy(ipt.rules, 'FORWARD')} : {present: false}
  if (ipt?.error) warnings.push(`iptables -S: ${ipt.error}`)
  const dockerUnit = r.units['docker.service']
  return {
    hostname: r.hostname,
    os: r.os,
    kernel: r.uname.kernel,
    arch: r.uname.arch,
    systemd: r.systemd,
    swap: r.swap,
    selinux: r.selinux,
    firewalld: r.firewalld,
    sysctl: r.sysctl,
    brNetfilter: r.brNetfilter,
    docker: {
      installed: Boolean(r.dockerd.path) || dockerUnit.exists,
      dockerdPath: r.dockerd.path,
      version: r.dockerd.version,
      execStart: dockerUnit.execStart,
      unit: dockerUnit,
    },
    etcd: {...r.etcdData, unit: r.units['etcd.service']},
    flanneld: {unit: r.units['flanneld.service']},
    listening: r.listening,
    ports: {tcp2379: has('tcp', 2379), tcp2380: has('tcp', 2380), udp8472: has('udp', 8472)},
    interfaces: r.interfaces,
    clock: r.clock,
    iptables,
    tools: r.tools,
    gatherMs,
    warnings,
  }
}

/** Parses the facts script's output (pure). Times are local wall-clock ms around the exec. */
export function parseFacts(
  out: string,
  opts: {etcdDataDir: string; localSendMs: number; localRecvMs: number},
): HostFacts {
  const r = parseProbes(factProbes(opts), out, {sendMs: opts.localSendMs, recvMs: opts.localRecvMs})
  return toHostFacts(r, opts.localRecvMs - opts.localSendMs)
}

/** Gathers facts in one round trip (as root: iptables needs it). */
export async function gatherFacts(remote: Remote, opts: {etcdDataDir?: string} = {}): Promise<HostFacts> {
  const r = await runProbes(remote, factProbes({etcdDataDir: opts.etcdDataDir ?? '/var/lib/etcd'}))
  return toHostFacts(r, r.gatherMs)
}

/** The facts script (pure). */
export function factsScript(opts: {etcdDataDir: string}): string {
  return probeScript(Object.values(factProbes(opts)))
}
