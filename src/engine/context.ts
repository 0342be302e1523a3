import type {HostFacts} from '../host/facts.js'
/**
 * What phases share: the cluster, one connection and one fact sheet per host, and the record of
 * what was (or, in a dry run, would be) changed. Remote changes go through `wet()` (a dry run
 * records them instead of doing them, k0sctl's Wet pattern) or through helpers that take
 * `dryRun` themselves (file writes and tarball installs in src/remote, which plan and diff).
 */
import type {Cluster, Host} from '../inventory/model.js'
import type {RemoteFileState} from '../remote/file-stat.js'
import type {Logger} from '../remote/logger.js'
import type {Remote} from '../remote/ssh.js'
import type {Service} from '../render/index.js'

export interface HostRun {
  host: Host
  remote: Remote
  facts: HostFacts
  /** What was changed on this host (or would be, in a dry run), in order. */
  changes: string[]
  /** Dry run: unified diffs of the files that would change. */
  diffs: string[]
  /** Services whose files changed in this run and that must (re)start. */
  restart: Set<Service>
  /** A unit file or drop-in changed: systemd must reload before the next start. */
  daemonReload: boolean
  /**
   * The state of every file kflan manages on the host, read once at the start (preflight); each
   * phase uses and drops its entries, so a converged host needs no further stat round trip.
   */
  fileStates?: Map<string, RemoteFileState>
  /** Set by the etcd phase: etcd.service was active before this run touched it. */
  etcdActive?: boolean
  /** Set by the flannel phase: the host's lease, from its subnet file. */
  flannelSubnet?: string
  flannelMtu?: number
}

export interface RunOptions {
  dryRun: boolean
  /** Overwrite a network config that differs while leases exist. */
  force: boolean
  /** Preflight check names downgraded to warnings (`all` for every check). */
  ignorePreflight: Set<string>
  concurrency: number
}

export class RunContext {
  readonly warnings: string[] = []
  readonly startedAt = performance.now()
  /**
   * The hosts this run may change. The others in `hosts` are only read (e.g. an etcd member
   * that `join node` asks for leases).
   */
  readonly targets: HostRun[]

  constructor(
    readonly cluster: Cluster,
    readonly stateDir: string,
    readonly hosts: HostRun[],
    readonly options: RunOptions,
    readonly logger: Logger,
    targetNames?: Set<string>,
  ) {
    this.targets = targetNames ? hosts.filter((h) => targetNames.has(h.host.name)) : hosts
  }

  get dryRun(): boolean {
    return this.options.dryRun
  }

  /** Runs `fn` and records `what` as a change on the host; in a dry run, only records it. */
  async wet<T>(h: HostRun, what: string, fn: () => Promise<T>): Promise<T | undefined> {
    h.changes.push(what)
    this.logger.log(h.host.name, {
      ts: new Date().toISOString(),
      kind: 'note',
      message: (this.dryRun ? 'would: ' : 'change: ') + what,
    })
    if (this.dryRun) return undefined
    return fn()
  }

  warn(h: HostRun | undefined, message: string): void {
    this.warnings.push(h ? `${h.host.name}: ${message}` : message)
    this.logger.log(h?.host.name ?? '-', {ts: new Date().toISOString(), kind: 'note', message: `warning: ${message}`})
  }

  get changed(): boolean {
    return this.hosts.some((h) => h.changes.length > 0)
  }
}

/** A step of `kflan init` / `join node`: it reads facts, changes exactly what differs, and says so. */
export interface Phase {
  /** Short name, used in logs, errors ("failed in phase etcd") and the dry-run plan. */
  name: string
  /** What the progress display says, as a person would ("start etcd"). */
  title: string
  /** The step after the per-host part, as a person would say it ("wait for a healthy etcd cluster"). */
  clusterTitle?: string
  /** The hosts this phase works on. */
  hosts(ctx: RunContext): HostRun[]
  /** Work on one host; runs concurrently across hosts. */
  runHost?(ctx: RunContext, h: HostRun): Promise<void>
  /** Work for the whole cluster, after the per-host part. */
  runCluster?(ctx: RunContext): Promise<void>
}

/** An error on one host in one phase, kept so the others can finish. */
export class HostFailure extends Error {
  constructor(
    readonly host: string,
    readonly phase: string,
    readonly cause: unknown,
  ) {
    super(`${host}: ${cause instanceof Error ? cause.message : String(cause)}`)
    this.name = 'HostFailure'
  }
}
