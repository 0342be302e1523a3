/** The resolution of a checked inventory into a Cluster: defaults, roles, paths relative to the file. */
import {homedir} from 'node:os'
import {dirname, isAbsolute, join, resolve} from 'node:path'

import type {RawInventory, SshSettings} from './schema.js'

import {type Cluster, flannelEtcdApi, type Host, type SshTarget} from './model.js'
import {defaultSubnetLen, intToIp, parseCidr, subnetBounds} from './net.js'

function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1))
  return isAbsolute(p) ? p : resolve(base, p)
}

function resolveSsh(base: SshSettings, own: SshSettings | undefined, dir: string): SshTarget {
  const m = {...base, ...own}
  return {
    user: m.user ?? 'root',
    port: m.port ?? 22,
    identityFile: m.identityFile ? expandPath(m.identityFile, dir) : undefined,
    passwordEnv: m.passwordEnv,
    sudoPasswordEnv: m.sudoPasswordEnv,
    agent: m.agent ?? false,
    bastion: m.bastion
      ? {
          ...m.bastion,
          user: m.bastion.user ?? m.user ?? 'root',
          identityFile: m.bastion.identityFile
            ? expandPath(m.bastion.identityFile, dir)
            : m.identityFile
              ? expandPath(m.identityFile, dir)
              : undefined,
        }
      : undefined,
  }
}

/** Applies defaults and roles. Call only on an inventory that passed checkInventory without errors. */
export function resolveCluster(inv: RawInventory, file: string): Cluster {
  const dir = dirname(file)
  const etcd = new Set(inv.roles.etcd ?? inv.roles.masters)
  const flannel = new Set(inv.roles.flannel ?? inv.roles.nodes)
  const masters = new Set(inv.roles.masters)
  const nodes = new Set(inv.roles.nodes)
  const hosts: Host[] = inv.hosts.map((h) => ({
    name: h.name,
    address: h.address,
    interface: h.interface ?? inv.flannel.interface,
    hostKey: h.hostKey,
    ssh: resolveSsh(inv.ssh, h.ssh, dir),
    roles: {master: masters.has(h.name), node: nodes.has(h.name), etcd: etcd.has(h.name), flannel: flannel.has(h.name)},
  }))
  const net = parseCidr(inv.flannel.network)
  if (typeof net === 'string') throw new Error(`resolveCluster on an invalid inventory: ${net}`)
  const subnetLen = inv.flannel.subnetLen ?? defaultSubnetLen(net)
  const bounds = subnetBounds(net, subnetLen)
  const etcdApi = flannelEtcdApi(inv.flannel.version)
  const tarball = (t: string) => (/^https?:\/\//.test(t) ? t : expandPath(t, dir))
  return {
    name: inv.cluster,
    source: file,
    hosts,
    etcd: {...inv.etcd, tarball: tarball(inv.etcd.tarball), enableV2: etcdApi === 'v2'},
    flannel: {
      version: inv.flannel.version,
      tarball: tarball(inv.flannel.tarball),
      sha256: inv.flannel.sha256,
      installDir: inv.flannel.installDir,
      network: inv.flannel.network,
      subnetLen,
      subnetMin: inv.flannel.subnetMin ?? intToIp(bounds.min),
      subnetMax: inv.flannel.subnetMax ?? intToIp(bounds.max),
      backend: inv.flannel.backend,
      prefix: inv.flannel.prefix,
      ipMasq: inv.flannel.ipMasq,
      healthzPort: inv.flannel.healthzPort,
      subnetFile: inv.flannel.subnetFile,
      etcdApi,
    },
    docker: inv.docker,
    pki: inv.pki,
    preflight: inv.preflight,
  }
}
