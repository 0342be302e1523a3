import {Flags} from '@oclif/core'

import type {RunSummary} from '../cli/report.js'

import {BaseCommand, runFlags} from '../cli/base-command.js'
import {confirm} from '../cli/prompt.js'
import {InputError, KflanError} from '../errors.js'
import {didYouMean} from '../inventory/diagnostics.js'
import {hostByName} from '../inventory/model.js'
import {resetTargets, runReset} from '../reset/index.js'

export default class Reset extends BaseCommand<typeof Reset> {
  static summary =
    'Undo what kflan did on the hosts: stop etcd and flanneld, take docker off flannel, restore the files kflan changed.'
  static description = `Stops and disables flanneld and etcd and removes their units, binaries and certificates; deletes each host's flannel lease from etcd (while etcd still runs); removes kflan's docker drop-in and starts docker again outside the flannel subnet; removes the flannel.<VNI> device, flanneld's iptables chains and kflan's FORWARD rules; restores the files kflan overwrote (/etc/hosts, /etc/fstab, ...) from their backups; removes kflan's sysctl and module files (kernel settings in effect are left as they are) and /var/lib/kflan. The etcd data directory is kept unless --purge-data: \`kflan init\` then brings the same cluster back with its data.

With --host, only that host is reset and the rest of the cluster keeps running. An etcd member reset alone stays in the member list (stopped) unless --purge-data, which removes it from the list first; either way the other members must keep quorum, else reset refuses.

A second reset finds nothing to do and says so.`
  static examples = [
    '<%= config.bin %> reset -i inventory.yaml --dry-run',
    '<%= config.bin %> reset -i inventory.yaml --yes',
    '<%= config.bin %> reset -i inventory.yaml --purge-data --yes',
    '<%= config.bin %> reset -i inventory.yaml --host node02',
  ]
  static enableJsonFlag = true
  static flags = {
    ...runFlags,
    host: Flags.string({
      summary: 'Reset only this host of the inventory; the rest of the cluster keeps running.',
      helpValue: 'NAME',
    }),
    'purge-data': Flags.boolean({summary: "Delete the etcd data directory too (the cluster's data is gone for good)."}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation (required when stdin is not a terminal).'}),
    'dry-run': Flags.boolean({summary: 'List what would be done on each host; change nothing.'}),
    concurrency: Flags.integer({summary: 'Hosts worked on at once.', default: 20, min: 1}),
    'accept-new-host-keys': Flags.boolean({summary: 'Trust and record the SSH host keys of hosts never seen before.'}),
  }

  async run(): Promise<RunSummary> {
    const {flags} = this
    const cluster = this.cluster({credentials: 'error'})
    let host
    if (flags.host !== undefined) {
      host = hostByName(cluster, flags.host)
      if (!host) {
        const guess = didYouMean(
          flags.host,
          cluster.hosts.map((h) => h.name),
        )
        throw new InputError(
          `${flags.host} is not a host in ${flags.inventory}${guess ? `; did you mean ${guess}?` : ''}`,
          {hint: `hosts: ${cluster.hosts.map((h) => h.name).join(', ')}`},
        )
      }
    }

    const targets = resetTargets(cluster, host)
    if (!flags['dry-run'] && !flags.yes) {
      if (!process.stdin.isTTY) {
        throw new InputError('kflan reset changes the hosts and needs a confirmation, but stdin is not a terminal', {
          hint: 'pass --yes to reset without asking, or --dry-run to see what it would do',
        })
      }

      const what = [
        `Reset ${targets.map((h) => h.name).join(', ')} of cluster ${cluster.name}:`,
        `stop and remove ${host ? 'what kflan installed there' : "etcd, flanneld and kflan's docker setup"}, delete the flannel lease${targets.length === 1 ? '' : 's'}, restore the files kflan changed.`,
        flags['purge-data'] ? 'The etcd data directory is DELETED (--purge-data).' : 'The etcd data directory is kept.',
        'Continue?',
      ].join('\n')
      if (!(await confirm(what, false))) throw new KflanError('aborted: nothing was changed', {exitCode: 1})
    }

    const stateDir = this.lockedStateDir(cluster)
    const {ctx, error, logFile} = await runReset({
      cluster,
      stateDir,
      host,
      purgeData: flags['purge-data'],
      dryRun: flags['dry-run'],
      concurrency: flags.concurrency,
      acceptNewHostKeys: flags['accept-new-host-keys'],
      output: this.jsonEnabled() ? 'silent' : 'auto',
    })
    return this.finishRun(
      {ctx, error},
      {
        command: 'reset',
        log: logFile,
        next: flags['dry-run']
          ? undefined
          : `${this.nextCommand('init')} sets the cluster up again${flags['purge-data'] ? '' : ' (etcd data kept)'}`,
        nothing: `nothing to reset: kflan left nothing on ${targets.map((h) => h.name).join(', ')}`,
      },
    )
  }
}
