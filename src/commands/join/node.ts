import {Args, Flags} from '@oclif/core'

import type {RunSummary} from '../../cli/report.js'

import {BaseCommand, offlineFlag, runFlags} from '../../cli/base-command.js'
import {type DoctorReport, formatReport, runDoctor} from '../../doctor/index.js'
import {newLogger, runSession} from '../../engine/session.js'
import {InputError, KflanError} from '../../errors.js'
import {joinPhases} from '../../init/index.js'
import {parseIgnored} from '../../init/preflight-checks.js'
import {didYouMean} from '../../inventory/diagnostics.js'
import {etcdMembers, hostByName} from '../../inventory/model.js'
import {ensureClusterPki} from '../../pki/cluster.js'

export default class JoinNode extends BaseCommand<typeof JoinNode> {
  static summary = 'Add a node from the inventory to an initialised cluster.'
  static description =
    'For a host newly added to the inventory as a node: preflight, binaries, the flanneld client certificate, flanneld and the docker drop-in, then a doctor run limited to that host. Existing hosts are not changed (an etcd member is only read from). Joining a node that is already joined changes nothing.'
  static examples = ['<%= config.bin %> join node node03 -i inventory.yaml']
  static args = {
    name: Args.string({description: "The node's name in the inventory.", required: true}),
  }
  static enableJsonFlag = true
  static flags = {
    ...runFlags,
    'dry-run': Flags.boolean({summary: 'Print what would change on the node; change nothing.'}),
    'accept-new-host-keys': Flags.boolean({summary: 'Trust and record the SSH host key of a host never seen before.'}),
    'ignore-preflight-errors': Flags.string({
      summary: 'Preflight checks to report as warnings, comma separated (or "all").',
      helpValue: 'NAME,...',
    }),
    offline: offlineFlag,
  }

  async run(): Promise<RunSummary & {doctor?: DoctorReport}> {
    const {args, flags} = await this.parse(JoinNode)
    const cluster = this.cluster({checkFiles: 'error', credentials: 'error'})
    const host = hostByName(cluster, args.name)
    if (!host) {
      const guess = didYouMean(
        args.name,
        cluster.hosts.map((h) => h.name),
      )
      throw new InputError(
        `${args.name} is not a host in ${this.flags.inventory}${guess ? `; did you mean ${guess}?` : ''}`,
        {
          hint: 'add the host under hosts: and roles.nodes: in the inventory first',
        },
      )
    }

    if (!host.roles.node || !host.roles.flannel) {
      throw new InputError(
        `${args.name} is not a node${host.roles.node ? ' running flanneld' : ''} in ${this.flags.inventory}`,
        {
          hint: host.roles.node
            ? 'add it to roles.flannel (or drop roles.flannel to default to the nodes)'
            : 'list it under roles.nodes; `join node` only adds nodes (etcd members are set up by `kflan init`)',
        },
      )
    }

    const ignorePreflight = parseIgnored(flags['ignore-preflight-errors'], cluster)
    // Only the tarballs this host installs from (flannel; etcd too when it is an etcd member).
    const local = await this.localTarballs(cluster, flags.offline, host.roles.etcd ? ['etcd', 'flannel'] : ['flannel'])
    const stateDir = this.lockedStateDir(cluster)
    const pki = await ensureClusterPki(cluster, stateDir)
    const reissued = pki.certificates.filter((c) => c.action !== 'reused')
    if (reissued.length > 0) {
      throw new KflanError(
        `the PKI changed (${reissued.map((c) => `${c.action} ${c.name}`).join(', ')}): existing hosts need it`,
        {
          hint: 'run `kflan init` to roll out the certificates; `join node` does not change existing hosts',
        },
      )
    }

    const logger = newLogger(stateDir, 'join')
    // One etcd member is connected too, read-only: leases are checked there.
    const observer = etcdMembers(cluster).find((m) => m.name !== host.name)
    const hosts = observer ? [host, observer] : [host]
    const result = await runSession(
      local,
      stateDir,
      hosts,
      joinPhases,
      {
        dryRun: flags['dry-run'],
        force: false,
        ignorePreflight,
        concurrency: 2,
        acceptNewHostKeys: flags['accept-new-host-keys'],
        output: this.jsonEnabled() ? 'silent' : 'auto',
      },
      logger,
      new Set([host.name]),
    )
    const summary = this.finishRun(result, {
      command: 'join node',
      log: logger.file,
      next: flags['dry-run'] ? `${this.nextCommand(`join node ${host.name}`)}` : undefined,
      nothing: `nothing changed: ${host.name} is already joined`,
    })
    if (flags['dry-run']) return summary
    // The node's own checks, and pings from it to every other flannel host and back.
    const doctorLog = newLogger(stateDir, 'join-doctor')
    let report
    try {
      report = await runDoctor(cluster, stateDir, {hosts: [host.name], logger: doctorLog})
    } finally {
      doctorLog.close()
    }

    this.log('')
    this.log(
      formatReport(
        report,
        cluster.hosts.map((h) => h.name),
      ),
    )
    if (!report.ok) {
      if (this.jsonEnabled()) {
        this.logJson({...summary, ok: false, doctor: report})
        this.exit(1)
      }

      throw new KflanError(`${host.name} joined, but doctor found problems (above)`, {
        hint: `fix them and run \`${this.nextCommand(`doctor --host ${host.name}`)}\``,
      })
    }

    return {...summary, doctor: report}
  }
}
