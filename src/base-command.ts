/**
 * Shared flags and error reporting for every command. Commands stay thin: parse, call the core,
 * show the result.
 */
import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {existsSync} from 'node:fs'
import {resolve} from 'node:path'
import {hintOf, KflanError, messageOf} from './errors.js'
import {loadInventory, type LoadOptions} from './inventory/load.js'
import {ensureWritableDir, readBoundedFile} from './local-files.js'
import {knownHostsProblems} from './remote/hostkeys.js'
import {knownHostsPath} from './session.js'
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
  protected cluster(opts: LoadOptions = {}): Cluster {
    const {cluster, warnings} = loadInventory(this.flags.inventory, opts)
    for (const w of warnings) this.logToStderr(formatDiagnostic(this.flags.inventory, w))
    return cluster
  }

  /** The state directory, created if needed; one that cannot hold files is an input error (exit 2). */
  protected stateDir(cluster: Cluster): string {
    const dir = ensureWritableDir(resolve(this.flags['state-dir'] ?? `.kflan/${cluster.name}`), 'state directory', 'pass --state-dir DIR (or KFLAN_STATE_DIR) naming a writable directory; the default is ./.kflan/<cluster>')
    this.warnKnownHosts(knownHostsPath(dir))
    return dir
  }

  /** Lines of kflan's known_hosts that cannot be used are named (they are ignored, and new keys are appended after them). */
  private warnKnownHosts(file: string): void {
    let text: string
    try {
      text = readBoundedFile(file, 'known_hosts file', 16 * 1024 * 1024, `remove it to start over: kflan records host keys again (with --accept-new-host-keys)`).toString('utf8')
    } catch (error) {
      if (existsSync(file)) this.logToStderr(`warning: ${messageOf(error)}`)
      return
    }
    for (const p of knownHostsProblems(text)) {
      this.logToStderr(`warning: ${file}:${p.line}: cannot parse this line (${p.why}); it is ignored when host keys are checked\n  hint: fix or delete line ${p.line}`)
    }
  }

  /**
   * Prints what a run against hosts did: warnings, then the changes, and the log path. On failure,
   * what was changed before it, then the error (exit 1) with its hint.
   */
  protected finishRun(verb: string, {ctx, error}: SessionResult, logFile: string): void {
    for (const w of warningReport(ctx)) this.logToStderr(w)
    if (error) {
      if (ctx.changed) this.logToStderr(`\nchanges made before the failure (re-run after fixing the cause; it continues from there):\n${changeReport(ctx)}`)
      throw new KflanError(`${verb} ${messageOf(error)}\nlog: ${logFile}`, {hint: hintOf(error) ?? `fix the cause and run \`kflan ${verb}\` again: it picks up where it stopped`})
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
