/**
 * The resolved cluster: the inventory with defaults applied and roles turned into per-host facts.
 * Everything downstream (pki, render, phases, doctor) works on this, never on raw YAML.
 */
import semver from 'semver'

import type {BackendSettings, RawInventory} from './schema.js'

export interface SshTarget {
  user: string
  port: number
  identityFile?: string
  passwordEnv?: string
  sudoPasswordEnv?: string
  agent: boolean
  bastion?: {
    address: string
    port: number
    user: string
    identityFile?: string
    passwordEnv?: string
    hostKey?: string
  }
}

export interface Host {
  name: string
  address: string
  /** flanneld's --iface; undefined means "the interface carrying `address`" (then --public-ip pins it). */
  interface?: string
  hostKey?: string
  ssh: SshTarget
  roles: {master: boolean; node: boolean; etcd: boolean; flannel: boolean}
}

export interface EtcdSettings {
  version: string
  /** Local path (resolved) or http(s) URL; src/tarballs/ turns a URL into its verified cached file before a run. */
  tarball: string
  sha256?: string
  dataDir: string
  installDir: string
  clientPort: number
  peerPort: number
  token: string
  extraSans: string[]
  /** Serve the v2 API (`--enable-v2`): only when the flannel version reads through v2. */
  enableV2: boolean
}

export interface FlannelSettings {
  version: string
  /** As EtcdSettings.tarball. */
  tarball: string
  sha256?: string
  installDir: string
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
  backend: BackendSettings
  prefix: string
  ipMasq: boolean
  healthzPort: number
  subnetFile: string
  /** flannel < 0.18 reads its config through the etcd v2 API; 0.18 and newer through v3. */
  etcdApi: 'v2' | 'v3'
}

export interface Cluster {
  name: string
  /** Absolute path of the inventory file (relative tarball paths are resolved against its directory). */
  source: string
  hosts: Host[]
  etcd: EtcdSettings
  flannel: FlannelSettings
  docker: RawInventory['docker']
  pki: RawInventory['pki']
  preflight: RawInventory['preflight']
  /** How long kflan waits on the hosts, in milliseconds (the inventory's `timeouts:`). */
  timeouts: Timeouts
}

export interface Timeouts {
  etcdStart: number
  flannelStart: number
  dockerStart: number
  doctorHost: number
  etcdRequest: number
}

export const etcdMembers = (c: Cluster): Host[] => c.hosts.filter((h) => h.roles.etcd)
export const flannelHosts = (c: Cluster): Host[] => c.hosts.filter((h) => h.roles.flannel)

export function hostByName(c: Cluster, name: string): Host | undefined {
  return c.hosts.find((h) => h.name === name)
}

export function clientUrl(c: Cluster, h: Host): string {
  return `https://${h.address}:${c.etcd.clientPort}`
}

export function peerUrl(c: Cluster, h: Host): string {
  return `https://${h.address}:${c.etcd.peerPort}`
}

export function etcdEndpoints(c: Cluster): string {
  return etcdMembers(c)
    .map((h) => clientUrl(c, h))
    .join(',')
}

/** Compares two versions (semver order, pre-releases before their release): negative when a < b. */
export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b)
}

export function flannelEtcdApi(flannelVersion: string): 'v2' | 'v3' {
  return compareVersions(flannelVersion, '0.18.0') < 0 ? 'v2' : 'v3'
}
