/**
 * The reset plan of one host, from the cluster and what was read on the host (pure, no I/O):
 * which services to stop, what to restore or delete, which kernel objects flanneld left.
 * Everything is decided from facts, not from the inventory's roles, so a host whose role changed
 * since `kflan init` is still cleaned completely, and a second reset finds nothing to do.
 */
import {posix} from 'node:path'

import type {HostFacts} from '../host/facts.js'
import type {Route} from '../host/net.js'
import type {Cluster, Host} from '../inventory/model.js'
import type {ResetFacts} from './facts.js'

import {docker0Of} from '../host/net.js'
import {type Cidr, cidrContains, ipToInt, parseCidr} from '../inventory/net.js'
import {DOCKER_DROPIN, SYSTEMD_DIR} from '../render/paths.js'
import {type FileOp, removableDir, sameText, TEXT_EDITED, undoTextEdit} from './file-ops.js'
import {iptablesCleanup, type IptablesOp} from './iptables.js'

export interface ResetOptions {
  /** Delete the etcd data directory too. */
  purgeData: boolean
}

export type DockerPlan =
  | {action: 'none'}
  /** Start (or restart) docker without kflan's drop-in; `pools`: this once with docker's default address pools. */
  | {action: 'restart'; pools: boolean; why: string}
  /** docker was stopped and disabled before the reset: leave it so, only take docker0 off the flannel subnet. */
  | {action: 'leave-stopped'; deleteBridge: boolean}

export interface HostResetPlan {
  host: string
  /** Stop and disable flanneld (docker keeps running until the network phase restarts it without the drop-in). */
  flanneld: boolean
  /** flanneld ran here (unit, subnet file or device left): its lease in etcd matters. */
  flannelTraces: boolean
  /** Removing kflan's docker drop-in (before docker starts again). */
  dropIn?: FileOp
  /** A drop-in left by an interrupted reset. */
  resetDropIn: boolean
  docker: DockerPlan
  /** docker0's address, when it sits in a flannel subnet. */
  dockerOnFlannel?: string
  iptables: IptablesOp[]
  /** Network devices to delete (flannel.<VNI>, flannel0). */
  links: string[]
  /** Routes into the flannel network left by host-gw: `DST dev DEV`. */
  routes: string[]
  /** flannel's runtime files to delete. */
  runFiles: string[]
  /** Stop and disable etcd. */
  etcd: boolean
  /** The etcd data directory to delete (--purge-data). */
  purgeData?: string
  /** Files kflan wrote, to restore or delete (the docker drop-in is in `dropIn`). */
  files: FileOp[]
  /** Enable symlinks of etcd/flanneld left without their unit. */
  wants: string[]
  /** Directories to remove when empty, deepest first (only kflan's own directories). */
  dirs: string[]
  /** A unit file goes: systemd must reload. */
  daemonReload: boolean
  /** /var/lib/kflan exists: clean it (managed list, backups, cache). */
  stateDir: boolean
  /** Nothing at all to do on this host. */
  empty: boolean
}

function cidr(s: string): Cidr | undefined {
  const c = parseCidr(s)
  return typeof c === 'string' ? undefined : c
}

/** An address with prefix is a flannel subnet gateway: inside the network, with the subnet length. */
export function onFlannelSubnet(c: Cluster, address: string, prefixLen: number): boolean {
  const net = cidr(c.flannel.network)
  return net !== undefined && cidrContains(net, ipToInt(address)) && prefixLen === c.flannel.subnetLen
}

/** docker0's IPv4 address when it sits in a flannel subnet (docker was started with flannel's --bip). */
export function dockerBridgeOnFlannel(c: Cluster, f: HostFacts): string | undefined {
  const b = docker0Of(f.interfaces)
  return b?.address && b.prefixLen !== undefined && onFlannelSubnet(c, b.address, b.prefixLen) ? b.cidr : undefined
}

/** Routes into the flannel network that stay after flanneld stops (host-gw), except docker0's and the deleted devices'. */
export function leftoverRoutes(c: Cluster, routes: Route[], gone: string[]): string[] {
  const net = cidr(c.flannel.network)
  if (!net) return []
  const out: string[] = []
  for (const r of routes) {
    const dst = cidr(r.dst)
    if (!dst || !r.dev) continue
    if (r.dev === 'docker0' || gone.includes(r.dev)) continue
    if (dst.prefix > net.prefix && cidrContains(net, dst.base)) out.push(`${r.dst} dev ${r.dev}`)
  }

  return out
}

export interface PlanInput {
  cluster: Cluster
  host: Host
  facts: HostFacts
  reset: ResetFacts
  /** Current and original content of TEXT_EDITED files that have a backup. */
  texts: Map<string, {current?: Buffer; original?: Buffer}>
  options: ResetOptions
}

const unitOn = (u: {exists: boolean; active: boolean; unitFileState?: string}) =>
  u.exists && (u.active || u.unitFileState === 'enabled' || u.unitFileState === 'enabled-runtime')

export function planHostReset(input: PlanInput): HostResetPlan {
  const {cluster: c, facts: f, reset: r, options} = input

  // Files: everything kflan created or overwrote, whatever the inventory says today.
  const ops: FileOp[] = []
  for (const [path, st] of [...r.files].sort(([a], [b]) => a.localeCompare(b))) {
    if (st.hasBackup) {
      const t = input.texts.get(path)
      if (TEXT_EDITED.includes(path) && t?.current && t.original && st.exists) {
        const undone = undoTextEdit(path, t.current.toString('utf8'), t.original.toString('utf8'))
        if (undone !== undefined && !sameText(undone, t.original.toString('utf8'))) {
          ops.push({path, action: 'rewrite', content: Buffer.from(undone), mode: st.mode})
          continue
        }
      }

      ops.push({path, action: 'restore'})
    } else if (st.managed) ops.push({path, action: st.exists ? 'remove' : 'forget'})
  }

  const dropIn = ops.find((o) => o.path === DOCKER_DROPIN)
  const files = ops.filter((o) => o !== dropIn)

  // Devices and routes flanneld made.
  const b = c.flannel.backend
  const names = new Set(f.interfaces.map((i) => i.name))
  const links = [b.type === 'vxlan' ? `flannel.${b.vni}` : undefined, 'flannel0'].filter(
    (n): n is string => n !== undefined && names.has(n),
  )
  const routes = leftoverRoutes(c, r.routes, links)

  // docker leaves the flannel subnet by starting again without kflan's drop-in.
  const dockerOnFlannel = dockerBridgeOnFlannel(c, f)
  const du = f.docker.unit
  let docker: DockerPlan = {action: 'none'}
  if (du.exists && (dropIn || dockerOnFlannel || r.resetDropIn)) {
    // docker keeps the default bridge's address across restarts (its network store): only an
    // explicit pool moves it, and docker refuses a flag that daemon.json sets too.
    const pools = dockerOnFlannel !== undefined && !r.dockerDaemonJson.bip && !r.dockerDaemonJson.pools
    if (du.active || du.unitFileState === 'enabled') {
      const why = dropIn
        ? "without kflan's drop-in"
        : dockerOnFlannel
          ? `docker0 is still ${dockerOnFlannel}`
          : 'after an interrupted reset'
      docker = {action: 'restart', pools, why}
    } else docker = {action: 'leave-stopped', deleteBridge: dockerOnFlannel !== undefined}
  }

  // etcd, and its data only when asked.
  const purgeData = options.purgeData && f.etcd.exists && removableDir(c.etcd.dataDir) ? c.etcd.dataDir : undefined

  // Empty directories: parents of removed files up to kflan's install directories.
  const roots = [c.etcd.installDir, c.flannel.installDir, posix.dirname(DOCKER_DROPIN)].filter(removableDir)
  const dirs = new Set<string>()
  for (const o of ops) {
    if (o.action !== 'remove' && o.action !== 'forget') continue
    const root = roots.find((x) => o.path.startsWith(`${x}/`))
    if (!root) continue
    for (let d = posix.dirname(o.path); d.length >= root.length; d = posix.dirname(d)) dirs.add(d)
  }

  const runDir = posix.dirname(c.flannel.subnetFile)
  if (r.runFiles.length > 0 && removableDir(runDir)) dirs.add(runDir)
  if (purgeData) {
    const parent = posix.dirname(purgeData)
    if (/etcd/i.test(posix.basename(parent)) && removableDir(parent)) dirs.add(parent)
  }

  const depth = (d: string) => d.split('/').length
  const sortedDirs = [...dirs].sort((a, z) => depth(z) - depth(a) || a.localeCompare(z))

  const wants = r.wants.filter(
    (w) => !(posix.basename(w) === 'etcd.service' ? f.etcd.unit.exists : f.flanneld.unit.exists),
  )
  const plan: HostResetPlan = {
    host: input.host.name,
    flanneld: unitOn(f.flanneld.unit),
    flannelTraces: f.flanneld.unit.exists || r.runFiles.length > 0 || links.length > 0,
    dropIn,
    resetDropIn: r.resetDropIn,
    docker,
    dockerOnFlannel,
    iptables: r.iptables ? iptablesCleanup(r.iptables.filter, r.iptables.nat, c.flannel.network) : [],
    links,
    routes,
    runFiles: r.runFiles,
    etcd: unitOn(f.etcd.unit),
    purgeData,
    files,
    wants,
    dirs: sortedDirs,
    daemonReload: ops.some(
      (o) => o.action !== 'rewrite' && o.path.startsWith(`${SYSTEMD_DIR}/`) && o.path.endsWith('.service'),
    ),
    stateDir: r.stateDir,
    empty: false,
  }
  plan.empty = !hasNetworkWork(plan) && !hasFileWork(plan) && !plan.flanneld && !plan.etcd
  return plan
}

/** The network part of the plan has work (the `network` phase runs on the host). */
export function hasNetworkWork(p: HostResetPlan): boolean {
  return (
    p.dropIn !== undefined ||
    p.resetDropIn ||
    p.docker.action !== 'none' ||
    p.iptables.length > 0 ||
    p.links.length > 0 ||
    p.routes.length > 0 ||
    p.runFiles.length > 0
  )
}

/** The files part of the plan has work. */
export function hasFileWork(p: HostResetPlan): boolean {
  return (
    p.files.length > 0 ||
    p.purgeData !== undefined ||
    p.wants.length > 0 ||
    p.dirs.length > 0 ||
    p.daemonReload ||
    p.stateDir
  )
}
