/**
 * Shared flags and error reporting for every command. Commands stay thin: parse, call the core,
 * show the result.
 */
import {Command, Errors, Flags, type Interfaces, ux} from '@oclif/core'
import {existsSync} from 'node:fs'
import {resolve} from 'node:path'

import type {SessionResult} from '../engine/session.js'
import type {Cluster} from '../inventory/model.js'

import {InterruptedError} from '../engine/interrupt.js'
import {knownHostsPath} from '../engine/session.js'
import {acquireStateLock, describeHolder} from '../engine/state-lock.js'
import {hintOf, KflanError, messageOf} from '../errors.js'
import {formatDiagnostic} from '../inventory/diagnostics.js'
import {loadInventory, type LoadOptions} from '../inventory/load.js'
import {ensureWritableDir, readBoundedFile} from '../inventory/local-files.js'
import {knownHostsProblems} from '../remote/hostkeys.js'
import {prepareTarballs, type TarballSection, tarballSummary} from '../tarballs/index.js'
import {changeList, formatSummary, type RunSummary, summarize} from './report.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>

/** Flags of every command that changes hosts (init, join node, reset): the same meaning on each. */
export const runFlags = {
  verbose: Flags.boolean({
    char: 'v',
    summary: 'Print every change on every host, not only the summary (the run log always has them).',
  }),
}

/** For the commands that install binaries (init, join node): same meaning on each. */
export const offlineFlag = Flags.boolean({
  summary:
    'Never download: tarball URLs must already be in the download cache ($XDG_CACHE_HOME/kflan, default ~/.cache/kflan).',
})

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static baseFlags = {
    inventory: Flags.string({
      char: 'i',
      summary: 'Inventory file (YAML).',
      helpValue: 'FILE',
      required: true,
    }),
    'state-dir': Flags.string({
      summary: 'Directory for the cluster state (PKI, known_hosts, logs). Default: ./.kflan/<cluster>.',
      env: 'KFLAN_STATE_DIR',
      helpValue: 'DIR',
    }),
  }
  protected flags!: BaseFlags<T>
  /** When the command started: a run's wall time includes loading the inventory and the PKI. */
  protected readonly startedAt = performance.now()

  public async init(): Promise<void> {
    await super.init()
    const {flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      args: this.ctor.args,
      enableJsonFlag: this.ctor.enableJsonFlag,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
  }

  /** Loads the inventory (exit 2 with every problem listed) and prints its warnings. */
  protected cluster(opts: LoadOptions = {}): Cluster {
    const {cluster, warnings} = loadInventory(this.flags.inventory, opts)
    for (const w of warnings) this.logToStderr(formatDiagnostic(this.flags.inventory, w))
    return cluster
  }

  /**
   * The cluster with its release tarballs as verified local files: URL tarballs from the download
   * cache or downloaded into it (refused with `offline`), every given sha256 checked. Runs before
   * any host is contacted; a mismatch stops here (exit 2).
   */
  protected async localTarballs(cluster: Cluster, offline: boolean, sections?: TarballSection[]): Promise<Cluster> {
    const {cluster: local, tarballs} = await prepareTarballs(cluster, {
      offline,
      output: this.jsonEnabled() ? 'silent' : 'auto',
      sections,
    })
    for (const line of tarballSummary(tarballs)) this.log(`tarball: ${line}`)
    return local
  }

  /** The state directory, created if needed; one that cannot hold files is an input error (exit 2). */
  protected stateDir(cluster: Cluster): string {
    const dir = ensureWritableDir(
      resolve(this.flags['state-dir'] ?? `.kflan/${cluster.name}`),
      'state directory',
      'pass --state-dir DIR (or KFLAN_STATE_DIR) naming a writable directory; the default is ./.kflan/<cluster>',
    )
    this.warnKnownHosts(knownHostsPath(dir))
    return dir
  }

  /** Lines of kflan's known_hosts that cannot be used are named (they are ignored, and new keys are appended after them). */
  private warnKnownHosts(file: string): void {
    let text: string
    try {
      text = readBoundedFile(
        file,
        'known_hosts file',
        16 * 1024 * 1024,
        `remove it to start over: kflan records host keys again (with --accept-new-host-keys)`,
      ).toString('utf8')
    } catch (error) {
      if (existsSync(file)) this.logToStderr(`warning: ${messageOf(error)}`)
      return
    }

    for (const p of knownHostsProblems(text)) {
      this.logToStderr(
        `warning: ${file}:${p.line}: cannot parse this line (${p.why}); it is ignored when host keys are checked\n  hint: fix or delete line ${p.line}`,
      )
    }
  }

  /**
   * The cluster's state dir, locked for this run (see src/engine/state-lock.ts): a second run against it
   * is refused; a stale lock is taken over, with a message. Released when the process exits.
   */
  protected lockedStateDir(cluster: Cluster): string {
    const dir = this.stateDir(cluster)
    const lock = acquireStateLock(dir, ['kflan', ...process.argv.slice(2)].join(' '))
    if (lock.tookOver)
      this.logToStderr(
        `kflan: took over the stale lock ${lock.file} of ${describeHolder(lock.tookOver)}, which is no longer running`,
      )
    return dir
  }

  /**
   * Ends a run against hosts: warnings, the change list (with --verbose, and always in a dry run),
   * then the summary with the next command and the log. --json: the summary as JSON on stdout
   * (also on failure). A failed run exits 1 after saying what it had changed.
   */
  protected finishRun(
    {ctx, error}: SessionResult,
    opts: {command: string; log: string; next?: string; nothing: string},
  ): RunSummary {
    const s = summarize(ctx, {
      command: opts.command,
      durationMs: performance.now() - this.startedAt,
      log: opts.log,
      error,
      next: error ? undefined : opts.next,
    })
    if (this.jsonEnabled()) {
      if (error) {
        this.logJson(s)
        this.exit(error instanceof KflanError ? error.exitCode : 1)
      }

      return s
    }

    const say = (text: string) => (error ? this.logToStderr(text) : this.log(text))
    for (const w of s.warnings) this.logToStderr(/\[WARNING /.test(w) ? w : `warning: ${w}`)
    // An interrupted run always lists what it changed: the cluster is half way (docs/safety.md).
    const verbose = (this.flags as {verbose?: boolean}).verbose || ctx.dryRun || error instanceof InterruptedError
    if (verbose && Object.keys(s.changes).length > 0)
      say(changeList(s, {diffs: ctx.dryRun ? new Map(ctx.hosts.map((h) => [h.host.name, h.diffs])) : undefined}))
    say(formatSummary(s, {nothing: opts.nothing}))
    if (error) {
      const hint =
        hintOf(error) ?? `fix the cause and run \`kflan ${opts.command}\` again: it picks up where it stopped`
      throw new KflanError(`${opts.command} ${messageOf(error)}`, {
        hint,
        exitCode: error instanceof KflanError ? error.exitCode : 1,
      })
    }

    return s
  }

  /** The same command line for the next step: the inventory and state dir as the user gave them. */
  protected nextCommand(words: string): string {
    const state =
      this.flags['state-dir'] && !process.env.KFLAN_STATE_DIR ? ` --state-dir ${this.flags['state-dir']}` : ''
    return `kflan ${words} -i ${this.flags.inventory}${state}`
  }

  protected async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    if (err instanceof Errors.ExitError || err instanceof Errors.CLIError) throw err
    if (err instanceof KflanError) {
      if (this.jsonEnabled()) this.logJson({error: {message: err.message, hint: err.hint, exitCode: err.exitCode}})
      this.printError(`Error: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}`)
      this.exit(err.exitCode)
    }

    this.printError(`kflan bug: ${err.stack ?? err}\nPlease report this with the command you ran.`)
    this.exit(1)
  }

  /**
   * An error is always printed on stderr, also with --json (oclif's logToStderr is silent then, and
   * `validate --json` on a bad inventory used to exit 2 saying nothing); --json adds it to stdout as
   * `{"error": {message, hint, exitCode}}`, oclif's shape for a failed --json command.
   */
  private printError(text: string): void {
    ux.stderr(text)
  }
}
