/**
 * Rules that relate inventory fields to each other (after the schema's per-field rules), and the
 * local files it names. Flannel's subnet arithmetic is in network-rules.ts; the resolution into a
 * Cluster in resolve.ts.
 */
import {existsSync} from 'node:fs'

import type {RawInventory, SshSettings} from './schema.js'

import {BACKEND_MTU_SINCE, backendMtuSupported} from '../cluster/flannel.js'
import {type Diagnostic, didYouMean, type Severity} from './diagnostics.js'
import {type Cluster, compareVersions, flannelEtcdApi} from './model.js'
import {ipToInt, isIPAddress, isIPv4} from './net.js'
import {checkFlannelNetwork} from './network-rules.js'

const dnsName =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/

type Path = Diagnostic['path']

export function checkInventory(inv: RawInventory): Diagnostic[] {
  const out: Diagnostic[] = []
  const error = (path: Path, message: string, hint?: string) => out.push({severity: 'error', path, message, hint})
  const warn = (path: Path, message: string, hint?: string) => out.push({severity: 'warning', path, message, hint})

  // Hosts: names and addresses unique and valid.
  const names = new Map<string, number>()
  const addresses = new Map<string, number>()
  for (const [i, h] of inv.hosts.entries()) {
    if (names.has(h.name))
      error(
        ['hosts', i, 'name'],
        `duplicate host name ${JSON.stringify(h.name)} (also hosts[${names.get(h.name)}])`,
        'every host needs its own name',
      )
    else names.set(h.name, i)
    const special = isIPv4(h.address) ? notAHost(h.address) : undefined
    if (!isIPv4(h.address)) {
      error(
        ['hosts', i, 'address'],
        `${JSON.stringify(h.address)} is not an IPv4 address`,
        'address is the IP etcd and flanneld bind to, e.g. 192.168.204.171',
      )
    } else if (special) {
      error(
        ['hosts', i, 'address'],
        `${h.address} cannot be a host's address: it is ${special}`,
        "use the address the host has on the cluster's network (`ip -4 addr` on the host)",
      )
    } else if (addresses.has(h.address)) {
      error(
        ['hosts', i, 'address'],
        `duplicate address ${h.address} (also hosts[${addresses.get(h.address)}])`,
        'every host needs its own address',
      )
    } else addresses.set(h.address, i)
  }

  // Bastions: an address or a DNS name kflan can connect to.
  const bastions: [Path, SshSettings | undefined][] = [
    [['ssh'], inv.ssh],
    ...inv.hosts.map((h, i): [Path, SshSettings | undefined] => [['hosts', i, 'ssh'], h.ssh]),
  ]
  for (const [path, s] of bastions) {
    const a = s?.bastion?.address
    if (a === undefined) continue
    const why = isIPAddress(a)
      ? isIPv4(a)
        ? notAHost(a)
        : undefined
      : dnsName.test(a)
        ? undefined
        : 'neither an IP address nor a DNS name'
    if (why)
      error(
        [...path, 'bastion', 'address'],
        `bastion address ${JSON.stringify(a)} is ${why}`,
        "the jump host's IP address or DNS name, e.g. 203.0.113.10 or bastion.example.com",
      )
  }

  // Roles reference hosts.
  const hostNames = inv.hosts.map((h) => h.name)
  const roleLists: [keyof RawInventory['roles'], string[] | undefined][] = [
    ['masters', inv.roles.masters],
    ['nodes', inv.roles.nodes],
    ['etcd', inv.roles.etcd],
    ['flannel', inv.roles.flannel],
  ]
  for (const [role, list] of roleLists) {
    const seen = new Set<string>()
    if (list)
      for (const [j, n] of list.entries()) {
        if (!names.has(n)) {
          const guess = didYouMean(n, hostNames)
          error(
            ['roles', role, j],
            `unknown host ${JSON.stringify(n)}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ''}`,
            `hosts are: ${hostNames.join(', ')}`,
          )
        }

        if (seen.has(n)) error(['roles', role, j], `${JSON.stringify(n)} is listed twice`)
        seen.add(n)
      }
  }

  const etcdList = inv.roles.etcd ?? inv.roles.masters
  if (etcdList.length === 0) {
    error(
      ['roles'],
      'no etcd member',
      'list etcd hosts under roles.etcd, or masters under roles.masters (etcd defaults to the masters)',
    )
  } else if (etcdList.length % 2 === 0) {
    warn(
      ['roles', inv.roles.etcd ? 'etcd' : 'masters'],
      `${etcdList.length} etcd members tolerate no more failures than ${etcdList.length - 1} would`,
      'use an odd number of etcd members (1, 3, 5)',
    )
  }

  const flannelList = inv.roles.flannel ?? inv.roles.nodes
  if (flannelList.length === 0) {
    warn(['roles'], 'no host runs flanneld', 'list nodes under roles.nodes, or hosts under roles.flannel')
  }

  const withRole = new Set([...etcdList, ...flannelList, ...inv.roles.masters, ...inv.roles.nodes])
  for (const [i, h] of inv.hosts.entries()) {
    if (!withRole.has(h.name))
      warn(
        ['hosts', i, 'name'],
        `host ${JSON.stringify(h.name)} has no role and will not be touched`,
        'add it to roles.masters or roles.nodes',
      )
  }

  out.push(...checkFlannelNetwork(inv, flannelList.length))

  // Versions: the API flannel reads must be one etcd serves.
  if (flannelEtcdApi(inv.flannel.version) === 'v2' && compareVersions(inv.etcd.version, '3.6.0') >= 0) {
    error(
      ['flannel', 'version'],
      `flannel ${inv.flannel.version} reads its config through the etcd v2 API, which etcd ${inv.etcd.version} no longer serves`,
      'use flannel 0.18.0 or newer (etcd v3 API), or etcd 3.5 or older (kflan then enables --enable-v2)',
    )
  }

  const {backend} = inv.flannel
  if (backend.type === 'vxlan' && backend.mtu !== undefined && !backendMtuSupported(inv.flannel.version)) {
    error(
      ['flannel', 'backend', 'mtu'],
      `flannel ${inv.flannel.version} ignores the backend's MTU (flannel reads it from ${BACKEND_MTU_SINCE} on): its vxlan device would stay at the interface's MTU - 50`,
      `remove flannel.backend.mtu, or use flannel ${BACKEND_MTU_SINCE} or newer`,
    )
  }

  if (compareVersions(inv.etcd.version, '3.4.0') < 0) {
    warn(['etcd', 'version'], `etcd ${inv.etcd.version} is older than 3.4 and untested with kflan`)
  }

  if (compareVersions(inv.flannel.version, '0.10.0') < 0) {
    warn(['flannel', 'version'], `flannel ${inv.flannel.version} is older than 0.10 and untested with kflan`)
  }

  if (inv.etcd.clientPort === inv.etcd.peerPort) {
    error(['etcd', 'peerPort'], `peerPort equals clientPort (${inv.etcd.clientPort})`)
  }

  for (const [i, s] of inv.etcd.extraSans.entries()) {
    if (!isIPAddress(s) && !dnsName.test(s))
      error(['etcd', 'extraSans', i], `${JSON.stringify(s)} is neither an IP address nor a DNS name`)
  }

  for (const key of ['etcd', 'flannel'] as const) {
    const t = inv[key].tarball
    if (/^[a-z]+:\/\//i.test(t)) {
      if (!/^https?:\/\//.test(t))
        error([key, 'tarball'], `unsupported URL scheme in ${JSON.stringify(t)}`, 'use an https:// URL or a local path')
      else if (!URL.canParse(t) || /\s/.test(t))
        error(
          [key, 'tarball'],
          `${JSON.stringify(t)} is not a valid URL`,
          'percent-encode spaces and other special characters',
        )
      else if (!inv[key].sha256)
        error(
          [key, 'sha256'],
          'a tarball fetched from a URL needs its sha256',
          'add sha256: <hex digest of the release tarball>',
        )
    }
  }

  return out
}

/**
 * Why an IPv4 address cannot be a host's own address, or undefined when it can: unspecified,
 * "this network" (0/8), loopback, multicast, reserved (240/4) or the limited broadcast. The
 * network and broadcast addresses of the host's own subnet are only known on the host
 * (preflight's HostAddress check).
 */
export function notAHost(ip: string): string | undefined {
  const n = ipToInt(ip)
  const first = n >>> 24
  if (n === 0) return 'the unspecified address'
  if (n === 0xff_ff_ff_ff) return 'the broadcast address'
  if (first === 0) return 'in 0.0.0.0/8 ("this network")'
  if (first === 127) return 'a loopback address'
  if (first >= 224 && first <= 239) return 'a multicast address'
  if (first >= 240) return 'a reserved address (240.0.0.0/4)'
  return undefined
}

/**
 * Local files the inventory points at (tarballs, identity files), reported with `severity`:
 * warnings for `validate`, errors for init and join, which check them before contacting any host.
 */
export function checkLocalFiles(inv: RawInventory, c: Cluster, severity: Severity = 'error'): Diagnostic[] {
  const out: Diagnostic[] = []
  const later = severity === 'warning' ? '; kflan init and join refuse to start without it' : ''
  for (const key of ['etcd', 'flannel'] as const) {
    const t = c[key].tarball
    if (!/^https?:\/\//.test(t) && !existsSync(t)) {
      out.push({
        severity,
        path: [key, 'tarball'],
        message: `file not found: ${t}`,
        hint: `relative paths are resolved against the inventory file's directory${later}`,
      })
    }
  }

  const reported = new Set<string>()
  for (const [i, h] of c.hosts.entries()) {
    const f = h.ssh.identityFile
    if (!f || existsSync(f) || reported.has(f)) continue
    reported.add(f)
    const path = inv.hosts[i].ssh?.identityFile ? ['hosts', i, 'ssh', 'identityFile'] : ['ssh', 'identityFile']
    out.push({
      severity,
      path,
      message: `identity file not found: ${f}`,
      hint: `point ssh.identityFile at your private key, or use agent: true${later}`,
    })
  }

  return out
}
