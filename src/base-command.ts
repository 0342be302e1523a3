/**
 * Shared flags and error reporting for every command. Commands stay thin: parse, call the core,
 * show the result.
 */
import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {resolve} from 'node:path'
import {hintOf, KflanError, messageOf} from './errors.js'
import {InterruptedError} from './interrupt.js'
import {acquireStateLock, describeHolder} from './state-lock.js'
import {loadInventory} from './inventory/load.js'
import {formatDiagnostic} from './inventory/diagnostics.js'
import type {Cluster} from './inventory/model.js'
import {changeReport, warningReport} from './report.js'
import type {SessionResult} from './session.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

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
  protected cluster(opts: {checkFiles?: boolean} = {}): Cluster {
    const {cluster, warnings} = loadInventory(this.flags.inventory, opts)
    for (const w of warnings) this.logToStderr(formatDiagnostic(this.flags.inventory, w))
    return cluster
  }

  protected stateDir(cluster: Cluster): string {
    return resolve(this.flags['state-dir'] ?? `.kflan/${cluster.name}`)
  }

  /**
   * The cluster's state dir, locked for this run (see src/state-lock.ts): a second run against it
   * is refused; a stale lock is taken over, with a message. Released when the process exits.
   */
  protected lockedStateDir(cluster: Cluster): string {
    const dir = this.stateDir(cluster)
    const lock = acquireStateLock(dir, ['kflan', ...process.argv.slice(2)].join(' '))
    if (lock.tookOver) this.logToStderr(`kflan: took over the stale lock ${lock.file} of ${describeHolder(lock.tookOver)}, which is no longer running`)
    return dir
  }

  /**
   * Prints what a run against hosts did: warnings, then the changes, and the log path. On failure,
   * what was changed before it, then the error (exit 1) with its hint.
   */
  protected finishRun(verb: string, {ctx, error}: SessionResult, logFile: string): void {
    for (const w of warningReport(ctx)) this.logToStderr(w)
    if (error) {
      const stop = error instanceof InterruptedError
      if (ctx.changed) this.logToStderr(`\nchanges made before the ${stop ? 'interrupt (re-run to finish' : 'failure (re-run after fixing the cause'}; it continues from there):\n${changeReport(ctx)}`)
      else if (stop) this.logToStderr('\nnothing was changed on any host before the interrupt')
      throw new KflanError(`${verb} ${messageOf(error)}\nlog: ${logFile}`, {
        hint: hintOf(error) ?? `fix the cause and run \`kflan ${verb}\` again: it picks up where it stopped`,
        exitCode: stop ? error.exitCode : 1,
      })
    }
    this.log(changeReport(ctx))
    this.log(`log: ${logFile}`)
  }

  protected async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    if (err instanceof Errors.ExitError || err instanceof Errors.CLIError) throw err
    if (err instanceof KflanError || hintOf(err) !== undefined) {
      const hint = hintOf(err)
      this.logToStderr(`Error: ${messageOf(err)}${hint ? `\n  hint: ${hint}` : ''}`)
      this.exit(err instanceof KflanError ? err.exitCode : 1)
    }
    this.logToStderr(`kflan bug: ${err.stack ?? err}\nPlease report this with the command you ran.`)
    this.exit(1)
  }
}
