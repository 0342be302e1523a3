import {Flags} from '@oclif/core'

import type {RunSummary} from '../cli/report.js'

import {BaseCommand, offlineFlag, runFlags} from '../cli/base-command.js'
import {confirm} from '../cli/prompt.js'
import {newLogger, runSession} from '../engine/session.js'
import {KflanError} from '../errors.js'
import {initPhases} from '../init/index.js'
import {parseIgnored} from '../init/preflight-checks.js'
import {ensureClusterPki, pkiSummary} from '../pki/cluster.js'

export default class Init extends BaseCommand<typeof Init> {
  static summary = 'Bring up etcd (TLS), flannel and docker networking on every host of the inventory.'
  static description = `Phases, in order: connect and gather facts, preflight and host preparation, binaries, certificates, etcd, flannel network config, flanneld, docker. Every phase changes only what differs from the inventory, so running init again on a converged cluster changes nothing. The full log (every remote command, secrets redacted) is written to the state directory.`
  static examples = [
    '<%= config.bin %> init -i inventories/example.yaml',
    '<%= config.bin %> init -i inventory.yaml --dry-run',
    '<%= config.bin %> init -i inventory.yaml --accept-new-host-keys --ignore-preflight-errors=Port-2379',
  ]
  static enableJsonFlag = true
  static flags = {
    ...runFlags,
    'dry-run': Flags.boolean({
      summary: 'Print what would change on each host (diffs, restarts, commands); change nothing.',
    }),
    concurrency: Flags.integer({summary: 'Hosts worked on at once.', default: 20, min: 1}),
    yes: Flags.boolean({
      char: 'y',
      summary: 'Do not ask for confirmation (needed with --force when stdin is not a terminal).',
    }),
    force: Flags.boolean({
      summary: 'Overwrite a flannel network config that differs in Network or backend while leases exist.',
    }),
    'accept-new-host-keys': Flags.boolean({summary: 'Trust and record the SSH host keys of hosts never seen before.'}),
    'ignore-preflight-errors': Flags.string({
      summary: 'Preflight checks to report as warnings, comma separated (or "all").',
      helpValue: 'NAME,...',
    }),
    offline: offlineFlag,
  }

  async run(): Promise<RunSummary> {
    const {flags} = this
    const inventory = this.cluster({checkFiles: 'error', credentials: 'error'})
    const ignorePreflight = parseIgnored(flags['ignore-preflight-errors'], inventory)
    const cluster = await this.localTarballs(inventory, flags.offline)
    const stateDir = this.lockedStateDir(cluster)
    if (
      flags.force &&
      !flags['dry-run'] &&
      !(await confirm('--force may overwrite the flannel network config while leases exist. Continue?', flags.yes))
    ) {
      throw new KflanError('aborted: --force not confirmed', {hint: 'pass --yes to confirm non-interactively'})
    }

    const pki = await ensureClusterPki(cluster, stateDir)
    for (const line of pkiSummary(pki)) this.log(`pki: ${line}`)
    const logger = newLogger(stateDir, flags['dry-run'] ? 'init-dry-run' : 'init')
    const hosts = cluster.hosts.filter((h) => h.roles.etcd || h.roles.flannel)
    const result = await runSession(
      cluster,
      stateDir,
      hosts,
      initPhases,
      {
        dryRun: flags['dry-run'],
        force: flags.force,
        ignorePreflight,
        concurrency: flags.concurrency,
        acceptNewHostKeys: flags['accept-new-host-keys'],
        output: this.jsonEnabled() ? 'silent' : 'auto',
      },
      logger,
    )
    return this.finishRun(result, {
      command: 'init',
      log: logger.file,
      next: flags['dry-run'] ? this.nextCommand('init') : this.nextCommand('doctor'),
      nothing: 'nothing changed: the cluster already matches the inventory',
    })
  }
}
