import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ensureClusterPki, pkiSummary} from '../cluster-pki.js'
import {KflanError, messageOf, hintOf} from '../errors.js'
import {initPhases} from '../phases/index.js'
import {changeReport, warningReport} from '../report.js'
import {newLogger, runSession} from '../session.js'
import {confirm} from '../prompt.js'

export default class Init extends BaseCommand<typeof Init> {
  static summary = 'Bring up etcd (TLS), flannel and docker networking on every host of the inventory.'
  static description = `Phases, in order: connect and gather facts, preflight and host preparation, binaries, certificates, etcd, flannel network config, flanneld, docker. Every phase changes only what differs from the inventory, so running init again on a converged cluster changes nothing. The full log (every remote command, secrets redacted) is written to the state directory.`
  static examples = [
    '<%= config.bin %> init -i inventories/example.yaml',
    '<%= config.bin %> init -i inventory.yaml --dry-run',
    '<%= config.bin %> init -i inventory.yaml --accept-new-host-keys --ignore-preflight-errors=Port-2379',
  ]
  static flags = {
    'dry-run': Flags.boolean({summary: 'Print what would change on each host (diffs, restarts, commands); change nothing.'}),
    concurrency: Flags.integer({summary: 'Hosts worked on at once.', default: 20, min: 1}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation (needed with --force when stdin is not a terminal).'}),
    force: Flags.boolean({summary: 'Overwrite a flannel network config that differs in Network or backend while leases exist.'}),
    'accept-new-host-keys': Flags.boolean({summary: 'Trust and record the SSH host keys of hosts never seen before.'}),
    'ignore-preflight-errors': Flags.string({summary: 'Preflight checks to report as warnings, comma separated (or "all").', helpValue: 'NAME,...'}),
  }

  async run(): Promise<void> {
    const flags = this.flags
    const cluster = this.cluster({checkFiles: true})
    const stateDir = this.stateDir(cluster)
    if (flags.force && !flags['dry-run'] && !(await confirm('--force may overwrite the flannel network config while leases exist. Continue?', flags.yes))) {
      throw new KflanError('aborted: --force not confirmed', {hint: 'pass --yes to confirm non-interactively'})
    }
    const pki = await ensureClusterPki(cluster, stateDir)
    for (const line of pkiSummary(pki)) this.log(`pki: ${line}`)
    const logger = newLogger(stateDir, flags['dry-run'] ? 'init-dry-run' : 'init')
    const hosts = cluster.hosts.filter((h) => h.roles.etcd || h.roles.flannel)
    const {ctx, error} = await runSession(cluster, stateDir, hosts, initPhases, {
      dryRun: flags['dry-run'],
      force: flags.force,
      ignorePreflight: new Set((flags['ignore-preflight-errors'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)),
      concurrency: flags.concurrency,
      acceptNewHostKeys: flags['accept-new-host-keys'],
      output: 'auto',
    }, logger)
    for (const w of warningReport(ctx)) this.logToStderr(w)
    if (error) {
      const done = ctx.hosts.filter((h) => h.changes.length > 0)
      if (done.length > 0) this.logToStderr(`\nchanges made before the failure (re-run init after fixing the cause; it continues from here):\n${changeReport(ctx)}`)
      throw new KflanError(`init ${messageOf(error)}\nlog: ${logger.file}`, {hint: hintOf(error) ?? 'fix the cause and run `kflan init` again: it picks up where it stopped'})
    }
    this.log(changeReport(ctx))
    this.log(`log: ${logger.file}`)
  }
}
