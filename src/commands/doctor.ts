import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {type DoctorReport, formatReport, runDoctor} from '../doctor/index.js'
import {newLogger} from '../engine/session.js'

export default class Doctor extends BaseCommand<typeof Doctor> {
  static summary =
    'Check the live cluster against the inventory: hosts, etcd, certificates, flannel, docker, and pings across the overlay.'
  static description = `Connects to every etcd and flannel host in parallel (host keys checked against kflan's known_hosts in the state directory; nothing is changed on any host) and reports one result per check: ok, warn or fail, what was seen, and a hint. An unreachable host is a single failed ssh.reachable check; the other hosts are still checked. Exit 0 when nothing failed (warnings allowed), 1 otherwise. docs/doctor.md lists every check.`
  static examples = [
    '<%= config.bin %> doctor -i inventory.yaml',
    '<%= config.bin %> doctor -i inventory.yaml --json',
    '<%= config.bin %> doctor -i inventory.yaml --host node03 --problems',
  ]
  static enableJsonFlag = true
  static flags = {
    host: Flags.string({
      summary: 'Limit host checks to this host (repeatable); pings still go to and from the other flannel hosts.',
      helpValue: 'NAME',
      multiple: true,
    }),
    problems: Flags.boolean({summary: 'Show only warnings and failures.'}),
  }

  async run(): Promise<DoctorReport> {
    const cluster = this.cluster({credentials: 'error'})
    const stateDir = this.stateDir(cluster)
    const logger = newLogger(stateDir, 'doctor')
    let report: DoctorReport
    try {
      report = await runDoctor(cluster, stateDir, {hosts: this.flags.host, logger})
    } finally {
      logger.close()
    }

    this.log(
      formatReport(
        report,
        cluster.hosts.map((h) => h.name),
        {problemsOnly: this.flags.problems},
      ),
    )
    if (!report.ok) process.exitCode = 1
    return report
  }
}
