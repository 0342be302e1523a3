/**
 * Rendering: a pure function from (cluster, host) to the files kflan wants on that host.
 * The same inventory and PKI always render the same bytes.
 */
import {clientUrl, type Cluster, etcdEndpoints, etcdMembers, type Host, peerUrl} from '../inventory/model.js'
import {CA_NAME, certificateFileNames, FLANNEL_CERT_NAME, memberCertNames} from '../pki/index.js'
import {RenderBug} from './escape.js'
import {DOCKER_DROPIN, DOCKER_OPTS_FILE, etcdPaths, flannelPaths, MODULES_FILE, SYSCTL_FILE} from './paths.js'
import {renderTemplate} from './templates.js'

/** What must happen on a host after a file changed. */
export type Service = 'etcd' | 'flanneld' | 'docker'
export type Follow = {restart: Service} | {apply: 'sysctl' | 'modules'} | {daemonReload: true}

export interface FileSpec {
  path: string
  mode: number
  content: string
  /** Private key material: never shown in diffs or logs. */
  secret: boolean
  /** What a change to this file requires. */
  follow: Follow[]
}

/** A binary taken from a release tarball. */
export interface BinarySpec {
  /** Base name of the member inside the tarball (searched at any depth). */
  member: string
  tarball: string
  sha256?: string
  dest: string
  restart: Service
}

export interface RenderContext {
  /** PEM of a PKI file by its file name in pki/ (src/pki/store.ts `certificateFileNames`). */
  pki: (file: string) => string
  /**
   * The host's docker.service ExecStart (from facts). Without facts (kflan render), docker-ce's
   * packaged default is assumed.
   */
  dockerExecStart?: string
}

export const DEFAULT_DOCKER_EXECSTART = '/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock'

const daemonReload: Follow = {daemonReload: true}

export function renderHost(c: Cluster, h: Host, ctx: RenderContext): FileSpec[] {
  const files: FileSpec[] = [
    {
      path: SYSCTL_FILE,
      mode: 0o644,
      content: renderTemplate('sysctl.conf', {}),
      secret: false,
      follow: [{apply: 'sysctl'}],
    },
    {
      path: MODULES_FILE,
      mode: 0o644,
      content: renderTemplate('modules-load.conf', {}),
      secret: false,
      follow: [{apply: 'modules'}],
    },
  ]
  if (h.roles.etcd) files.push(...etcdFiles(c, h, ctx))
  if (h.roles.flannel) files.push(...flannelFiles(c, h, ctx))
  if (h.roles.flannel && c.docker.enabled) files.push(dockerDropIn(c, ctx))
  return files
}

const CA_FILE = certificateFileNames(CA_NAME).certFile

/** A certificate (public, 0644) and a private key (secret, 0600) installed for a service. */
function cert(path: string, content: string, restart: Service): FileSpec {
  return {path, mode: 0o644, content, secret: false, follow: [{restart}]}
}

function key(path: string, content: string, restart: Service): FileSpec {
  return {path, mode: 0o600, content, secret: true, follow: [{restart}]}
}

function etcdFiles(c: Cluster, h: Host, ctx: RenderContext): FileSpec[] {
  const p = etcdPaths(c)
  const conf = renderTemplate('etcd.conf', {
    name: h.name,
    dataDir: c.etcd.dataDir,
    peerUrl: peerUrl(c, h),
    clientUrl: clientUrl(c, h),
    clientPort: c.etcd.clientPort,
    initialCluster: etcdMembers(c)
      .map((m) => `${m.name}=${peerUrl(c, m)}`)
      .join(','),
    token: c.etcd.token,
  })
  const unit = renderTemplate('etcd.service', {
    cluster: c.name,
    confFile: p.conf,
    joinFile: p.join,
    binDir: p.bin,
    ca: p.ca,
    serverCert: p.serverCert,
    serverKey: p.serverKey,
    peerCert: p.peerCert,
    peerKey: p.peerKey,
    enableV2: c.etcd.enableV2,
  })
  const names = memberCertNames(h.name)
  const server = certificateFileNames(names.server)
  const peer = certificateFileNames(names.peer)
  return [
    {path: p.conf, mode: 0o644, content: conf, secret: false, follow: [{restart: 'etcd'}]},
    {path: p.unit, mode: 0o644, content: unit, secret: false, follow: [daemonReload, {restart: 'etcd'}]},
    cert(p.ca, ctx.pki(CA_FILE), 'etcd'),
    cert(p.serverCert, ctx.pki(server.certFile), 'etcd'),
    key(p.serverKey, ctx.pki(server.keyFile), 'etcd'),
    cert(p.peerCert, ctx.pki(peer.certFile), 'etcd'),
    key(p.peerKey, ctx.pki(peer.keyFile), 'etcd'),
  ]
}

function flannelFiles(c: Cluster, h: Host, ctx: RenderContext): FileSpec[] {
  const p = flannelPaths(c)
  const flannel = certificateFileNames(FLANNEL_CERT_NAME)
  const unit = renderTemplate('flanneld.service', {
    cluster: c.name,
    localEtcd: h.roles.etcd,
    binDir: p.bin,
    ca: p.ca,
    cert: p.cert,
    key: p.key,
    endpoints: etcdEndpoints(c),
    prefix: c.flannel.prefix,
    // flanneld's --iface takes a name or an address; the address picks the right NIC on
    // multi-NIC hosts (Vagrant's NAT eth0) when no interface is named.
    iface: h.interface ?? h.address,
    publicIp: h.address,
    ipMasq: c.flannel.ipMasq,
    subnetFile: c.flannel.subnetFile,
    healthzPort: c.flannel.healthzPort,
    dockerOptsFile: DOCKER_OPTS_FILE,
  })
  return [
    {path: p.unit, mode: 0o644, content: unit, secret: false, follow: [daemonReload, {restart: 'flanneld'}]},
    cert(p.ca, ctx.pki(CA_FILE), 'flanneld'),
    cert(p.cert, ctx.pki(flannel.certFile), 'flanneld'),
    key(p.key, ctx.pki(flannel.keyFile), 'flanneld'),
  ]
}

/**
 * The docker.service drop-in: the installed unit's own ExecStart plus $DOCKER_NETWORK_OPTIONS.
 * The vendor unit is never edited.
 */
function dockerDropIn(c: Cluster, ctx: RenderContext): FileSpec {
  const content = renderTemplate('docker-flannel.conf', {
    dockerOptsFile: DOCKER_OPTS_FILE,
    subnetFile: c.flannel.subnetFile,
    execStart: ctx.dockerExecStart ?? DEFAULT_DOCKER_EXECSTART,
    network: c.flannel.network,
  })
  return {path: DOCKER_DROPIN, mode: 0o644, content, secret: false, follow: [daemonReload, {restart: 'docker'}]}
}

export function binaries(c: Cluster, h: Host): BinarySpec[] {
  const out: BinarySpec[] = []
  if (h.roles.etcd) {
    const {bin} = etcdPaths(c)
    for (const m of ['etcd', 'etcdctl']) {
      out.push({member: m, tarball: c.etcd.tarball, sha256: c.etcd.sha256, dest: `${bin}/${m}`, restart: 'etcd'})
    }
  }

  if (h.roles.flannel) {
    const {bin} = flannelPaths(c)
    for (const m of ['flanneld', 'mk-docker-opts.sh']) {
      out.push({
        member: m,
        tarball: c.flannel.tarball,
        sha256: c.flannel.sha256,
        dest: `${bin}/${m}`,
        restart: 'flanneld',
      })
    }
  }

  return out
}

/** The value kflan writes to `<prefix>/config` (flannel's network config). */
export function networkConfig(c: Cluster): string {
  const f = c.flannel
  const b = f.backend
  const backend: Record<string, unknown> = {Type: b.type}
  if (b.type === 'vxlan') {
    backend.VNI = b.vni
    backend.Port = b.port
    if (b.directRouting) backend.DirectRouting = true
    if (b.mtu !== undefined) backend.MTU = b.mtu
  } else if (b.type === 'udp') {
    backend.Port = b.port
  }

  return JSON.stringify({
    Network: f.network,
    SubnetLen: f.subnetLen,
    SubnetMin: f.subnetMin,
    SubnetMax: f.subnetMax,
    Backend: backend,
  })
}

export const HOSTS_BEGIN = '# BEGIN kflan hosts'
export const HOSTS_END = '# END kflan hosts'

/** The managed block kflan keeps in every host's /etc/hosts. */
export function hostsBlock(c: Cluster): string {
  // /etc/hosts has no quoting: a field is a word or it is refused (validation already made it one).
  const word = (field: string, v: string) => {
    if (!/^[A-Za-z0-9.:-]+$/.test(v)) throw new RenderBug(`/etc/hosts: ${field}`, v, 'not a host name or address')
    return v
  }

  return (
    [HOSTS_BEGIN, ...c.hosts.map((h) => `${word('address', h.address)} ${word('name', h.name)}`), HOSTS_END].join(
      '\n',
    ) + '\n'
  )
}

/** /etc/hosts with kflan's block inserted or replaced (pure). */
export function withHostsBlock(current: string, c: Cluster): string {
  const block = hostsBlock(c)
  const start = current.indexOf(HOSTS_BEGIN)
  const end = current.indexOf(HOSTS_END)
  if (start !== -1 && end > start) {
    return current.slice(0, start) + block + current.slice(end + HOSTS_END.length).replace(/^\n/, '')
  }

  const base = current.length === 0 || current.endsWith('\n') ? current : current + '\n'
  return base + block
}
