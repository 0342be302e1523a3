import type {HostFacts} from '../host/facts.js'
/**
 * What phases share: the cluster, one connection and one fact sheet per host, and the record of
 * what was (or, in a dry run, would be) changed. Every remote change goes through `wet()` (or
 * `wetPlanned()` for the remote helpers that plan their own writes): the one place where a dry
 * run is decided, k0sctl's Wet pattern. Phases never test `dryRun` themselves; reads stay reads.
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

  /** For reports ("would change"); phases decide nothing on it: they go through wet(). */
  get dryRun(): boolean {
    return this.options.dryRun
  }

  /**
   * The one "record or run" step. Records `what` (one change or several made by one action) on
   * the host and runs `fn`; in a dry run, only records. Returns fn's result, undefined in a dry run.
   *
   * - `what` empty: nothing to record, `fn` runs only in a live run: what follows a change and
   *   watches it take effect (wait for a lease, for a healthy cluster), pointless when nothing changed.
   * - `summary`: `what` is the plan's word for work that `fn` records itself, change by change,
   *   through this same step (the live run reads what it cannot know in a dry run, e.g. the users of
   *   an etcd that is not running yet); a live run does not record `what`.
   */
  async wet<T>(
    h: HostRun | undefined,
    what: string | readonly string[],
    fn: () => Promise<T>,
    opts: {summary?: boolean} = {},
  ): Promise<T | undefined> {
    if (!opts.summary || this.dryRun) this.record(h, typeof what === 'string' ? [what] : what)
    return this.dryRun ? undefined : fn()
  }

  /**
   * The same step for a remote helper that plans its own change (file writes, tarball installs:
   * they read the host and write only what differs, and compute diffs in a dry run): `fn` gets the
   * run's mode and must only read when it is a dry run; `describe` names the changes from its result.
   */
  async wetPlanned<T>(
    h: HostRun,
    fn: (dryRun: boolean) => Promise<T>,
    describe: (result: T, dryRun: boolean) => string[],
  ): Promise<T> {
    const result = await fn(this.dryRun)
    this.record(h, describe(result, this.dryRun))
    return result
  }

  private record(h: HostRun | undefined, whats: readonly string[]): void {
    if (whats.length === 0) return
    if (!h) throw new Error(`a change needs a host: ${whats.join('; ')}`)
    for (const what of whats) {
      h.changes.push(what)
      this.logger.log(h.host.name, {
        ts: new Date().toISOString(),
        kind: 'note',
        message: (this.dryRun ? 'would: ' : 'change: ') + what,
      })
    }
  }

  warn(h: HostRun | undefined, message: string): void {
    this.warnings.push(h ? `${h.host.name}: ${message}` : message)
    this.logger.log(h?.host.name ?? '-', {ts: new Date().toISOString(), kind: 'note', message: `warning: ${message}`})
  }

  get changed(): boolean {
    return this.hosts.some((h) => h.changes.length > 0)
  }
}

interface PhaseInfo {
  /** Short name, used in logs, errors ("failed in phase etcd") and the dry-run plan. */
  name: string
  /** What the progress display says, as a person would ("start etcd"). */
  title: string
}

/**
 * A phase that works host by host (concurrently, a failed host lets the others finish), then
 * optionally for the whole cluster. Skipped when no host needs it and it has no cluster part.
 */
export interface HostPhase extends PhaseInfo {
  kind: 'hosts'
  /** The hosts this phase works on. */
  hosts(ctx: RunContext): HostRun[]
  /** Work on one host; runs concurrently across hosts. */
  runHost(ctx: RunContext, h: HostRun): Promise<void>
  /** The step after the per-host part, as a person would say it ("wait for a healthy etcd cluster"). */
  clusterTitle?: string
  /** Work for the whole cluster, after the per-host part. */
  runCluster?(ctx: RunContext): Promise<void>
}

/** A phase for the whole cluster at once (etcd's API, an order across hosts); it always runs. */
export interface ClusterPhase extends PhaseInfo {
  kind: 'cluster'
  runCluster(ctx: RunContext): Promise<void>
}

/** A step of a run (init, join node, reset): it reads facts, changes exactly what differs, and says so. */
export type Phase = HostPhase | ClusterPhase

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
