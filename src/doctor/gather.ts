/**
 * Gathering for the doctor: per host, ONE script of the host probes the checks need (src/host/,
 * the same probes init and reset compose; slow ones such as etcdctl and firewall-cmd run in the
 * background inside it), plus two tiny reads on parallel channels of the same connection: the
 * private keys (never logged, never printed) and the clock (its own channel keeps the reading's
 * uncertainty small). Composition and parsing are pure; only the functions at the bottom do I/O.
 */
import type {Remote} from '../remote/ssh.js'
import type {ClusterReads, EtcdView, HostData} from './types.js'

import {healthUrls, hostPorts as neededPorts, vxlanDevice} from '../cluster/flannel.js'
import {clockProbe} from '../host/clock.js'
import {dockerdCmdlineProbe, dockerVendorProbe} from '../host/docker.js'
import {etcdProcessProbe, etcdSetting} from '../host/etcd.js'
import {fileContentsProbe} from '../host/files.js'
import {firewalldOpens, firewalldProbe} from '../host/firewalld.js'
import {httpGetProbe} from '../host/http.js'
import {iptablesProbe} from '../host/iptables.js'
import {brNetfilterProbe, selinuxProbe, swapProbe, sysctlProbe} from '../host/kernel.js'
import {interfacesProbe, routesProbe, vxlanProbe} from '../host/net.js'
import {parseProbes, type Probe, probeScript, runProbes} from '../host/probe.js'
import {unitsProbe} from '../host/units.js'
import {type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {renderHost} from '../render/index.js'
import {certificateFiles, etcdPaths} from '../render/paths.js'
import {endpointProbes, endpointsOf, readProbes, readsOf} from './reads.js'

/**
 * The files kflan renders and owns on a host, certificates aside (unit files, drop-in, etcd's
 * environment files, sysctl and modules files): doctor compares each with what kflan renders.
 */
export function ownedFiles(c: Cluster, h: Host): string[] {
  const certs = new Set(Object.values(certificateFiles(c, h)).flat())
  const rendered = renderHost(c, h, {pki: () => ''})
    .filter((f) => !f.secret && !certs.has(f.path))
    .map((f) => f.path)
  return h.roles.etcd ? [...rendered, etcdPaths(c).join] : rendered
}

/** The files the checks read on a host: kflan's own files, certificates, the subnet file. */
export function hostFiles(c: Cluster, h: Host): {public: string[]; keys: string[]} {
  const {certs, keys} = certificateFiles(c, h)
  const pub = [...certs]
  if (h.roles.flannel) pub.push(c.flannel.subnetFile)
  pub.push(...ownedFiles(c, h))
  return {public: [...new Set(pub)], keys}
}

/**
 * Every probe the checks may read, by role (pure). The script of a host runs only those its roles
 * need (`doctorProbes`); a probe not run parses as "not read" (empty list, undefined).
 */
function allProbes(c: Cluster, h: Host) {
  const dev = vxlanDevice(c)
  const hz = healthUrls(c)
  return {
    units: unitsProbe(['etcd.service', 'flanneld.service', 'docker.service']),
    swap: swapProbe,
    selinux: selinuxProbe,
    sysctl: sysctlProbe,
    brNetfilter: brNetfilterProbe,
    iptables: iptablesProbe('filter'),
    firewalld: firewalldProbe({zones: true}),
    files: fileContentsProbe(hostFiles(c, h).public),
    etcdProcess: etcdProcessProbe,
    interfaces: interfacesProbe(),
    routes: routesProbe,
    vxlan: vxlanProbe(dev ?? 'flannel.1'),
    healthz: httpGetProbe('http-healthz', hz.healthz ?? ''),
    readyz: httpGetProbe('http-readyz', hz.readyz ?? ''),
    dockerCmdline: dockerdCmdlineProbe,
    dockerVendor: dockerVendorProbe,
  }
}

/** The probes of one host's checks script (pure). `reads`: this member also does the cluster reads. */
export function doctorProbes(c: Cluster, h: Host, opts: {reads?: boolean} = {}): Probe<unknown>[] {
  const a = allProbes(c, h)
  const hz = healthUrls(c)
  const {flannel} = h.roles
  return [
    a.units,
    ...(h.roles.etcd ? Object.values(endpointProbes(c, [h])) : []),
    ...(opts.reads ? Object.values(readProbes(c)) : []),
    a.iptables,
    a.firewalld,
    a.swap,
    a.selinux,
    a.sysctl,
    a.brNetfilter,
    ...(h.roles.etcd ? [a.etcdProcess] : []),
    a.files,
    ...(flannel ? [a.interfaces, a.routes] : []),
    ...(flannel && vxlanDevice(c) ? [a.vxlan] : []),
    ...(flannel && hz.healthz ? [a.healthz] : []),
    ...(flannel && hz.readyz ? [a.readyz] : []),
    ...(flannel && c.docker.enabled ? [a.dockerCmdline, a.dockerVendor] : []),
  ].filter((p, i, all) => all.indexOf(p) === i)
}

/** The checks script for one host (pure). */
export function doctorScript(c: Cluster, h: Host, opts: {reads?: boolean} = {}): string {
  return probeScript(doctorProbes(c, h, opts))
}

const NO_TIMES = {sendMs: 0, recvMs: 0}

/** Parses the checks script's output and the keys output (pure). */
export function parseDoctorOutput(c: Cluster, h: Host, out: string, keysOut = '', clock?: HostData['clock']): HostData {
  const r = parseProbes(allProbes(c, h), out, NO_TIMES)
  const {keys} = parseProbes({keys: fileContentsProbe(hostFiles(c, h).keys, 'keys')}, keysOut, NO_TIMES)
  const missingTools: string[] = []
  if (r.iptables === undefined) missingTools.push('iptables')

  let etcd: EtcdView | undefined
  if (h.roles.etcd) {
    const runs = parseProbes({...endpointProbes(c, etcdMembers(c)), ...readProbes(c)}, out, NO_TIMES)
    const process = r.etcdProcess
    const quota = process ? etcdSetting(process, 'quota-backend-bytes') : undefined
    etcd = {
      quotaBytes: quota && /^\d+$/.test(quota) ? Number(quota) : undefined,
      process,
      endpoints: endpointsOf(c, runs),
      reads: readsOf(c, runs),
    }
  }

  const health: NonNullable<HostData['health']> = {}
  for (const name of ['healthz', 'readyz'] as const) {
    const got = r[name]
    if (got === 'no-curl') {
      if (!missingTools.includes('curl')) missingTools.push('curl')
    } else if (got) health[name] = got
  }

  const present = (u: string) => (r.units[u].loadState === '' ? undefined : r.units[u])
  return {
    clock,
    swap: r.swap,
    selinux: r.selinux,
    firewalld: {...r.firewalld, ports: firewalldOpens(r.firewalld, neededPorts(c, h))},
    sysctl: r.sysctl,
    brNetfilter: r.brNetfilter,
    iptables: r.iptables,
    units: {etcd: present('etcd.service'), flanneld: present('flanneld.service'), docker: present('docker.service')},
    etcd,
    files: {...r.files, ...keys},
    interfaces: r.interfaces,
    routes: r.routes,
    vxlan: r.vxlan,
    dockerCmdline: r.dockerCmdline,
    health: Object.keys(health).length > 0 ? health : undefined,
    dockerVendorExecStart: r.dockerVendor,
    missingTools,
  }
}

// ---------------------------------------------------------------- I/O

/** One host: the checks script, the keys and the clock, on three channels at once. */
export async function gatherHost(remote: Remote, c: Cluster, h: Host, opts: {reads?: boolean} = {}): Promise<HostData> {
  const {keys} = hostFiles(c, h)
  const timeoutMs = c.timeouts.doctorHost
  const main = remote.run('sh -s', {stdin: doctorScript(c, h, opts), timeoutMs})
  const secret =
    keys.length > 0
      ? remote.run('sh -s', {
          stdin: probeScript([fileContentsProbe(keys, 'keys')]),
          logOutput: false,
          timeoutMs,
        })
      : Promise.resolve({stdout: ''})
  const clock = runProbes(remote, {clock: clockProbe}, {sudo: false, timeoutMs: 5000}).then(
    ({clock: k}) => (Number.isFinite(k.skewMs) ? k : undefined),
    () => undefined,
  )
  const [m, k, ck] = await Promise.all([main, secret, clock])
  return parseDoctorOutput(c, h, m.stdout, k.stdout, ck)
}

/**
 * Second round, only when needed: health and status of members nobody could log in to, and the
 * cluster reads when the member meant to do them could not.
 */
export function followUpProbes(c: Cluster, opts: {members: Host[]; reads: boolean}) {
  return {...endpointProbes(c, opts.members), ...(opts.reads ? readProbes(c) : {})}
}

/** The second round on one member (see followUpProbes). */
export async function followUp(
  remote: Remote,
  c: Cluster,
  opts: {members: Host[]; reads: boolean},
): Promise<{endpoints: EtcdView['endpoints']; reads?: ClusterReads}> {
  const r = await runProbes(remote, followUpProbes(c, opts), {timeoutMs: c.timeouts.doctorHost})
  return {endpoints: endpointsOf(c, r), reads: readsOf(c, r)}
}
