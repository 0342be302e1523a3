import {BaseCommand} from '../../cli/base-command.js'
import {table} from '../../cli/table.js'
import {KflanError} from '../../errors.js'
import {certProblems} from '../../pki/check.js'
import {pkiRequest} from '../../pki/cluster.js'
import {type CertFileDescription, inspectCertificates, planCertificates} from '../../pki/index.js'

export default class CertsCheck extends BaseCommand<typeof CertsCheck> {
  static summary = "Show every certificate in the cluster's PKI with its SANs, usages and expiry."
  static description =
    'Reads the local state directory (no host is contacted) and compares each certificate with what the inventory needs: SANs, CA signature, key match, expiry (warn under 30 days). Exit 1 when a certificate has a problem; `kflan init` re-issues such certificates.'
  static examples = ['<%= config.bin %> certs check -i inventories/example.yaml']
  static enableJsonFlag = true
  static flags = {}

  async run(): Promise<unknown> {
    const cluster = this.cluster()
    const stateDir = this.stateDir(cluster)
    const {certificates, unreadable} = await inspectCertificates(stateDir)
    if (certificates.length === 0 && unreadable.length === 0) {
      throw new KflanError(`no certificates in ${stateDir}/pki`, {
        hint: 'run `kflan init` or `kflan render` first (or pass --state-dir)',
      })
    }

    const plan = planCertificates(pkiRequest(cluster))
    const rows = certificates.map((c: CertFileDescription) => ({
      ...c,
      problems: certProblems(
        c,
        plan.find((p) => p.name === c.name),
      ),
    }))
    for (const p of plan)
      if (!certificates.some((c) => c.name === p.name)) rows.push({name: p.name, problems: ['missing']} as never)
    if (!this.jsonEnabled()) {
      this.log(
        table(
          ['NAME', 'SUBJECT', 'SANS', 'USAGES', 'EXPIRES', 'DAYS', 'STATUS'],
          rows.map((r) => [
            r.name,
            r.commonName ?? '-',
            r.sans?.join(',') || '-',
            r.usages?.join(',') || (r.isCA ? 'CA' : '-'),
            r.notAfter ? r.notAfter.toISOString().slice(0, 10) : '-',
            r.daysLeft === undefined ? '-' : String(r.daysLeft),
            r.problems.length === 0 ? 'ok' : r.problems.join('; '),
          ]),
        ),
      )
      for (const u of unreadable) this.log(`unreadable: ${u}`)
    }

    const bad = rows.filter((r) => r.problems.some((p) => !p.startsWith('warning')))
    if (bad.length > 0 || unreadable.length > 0) {
      // --json: the report on stdout, and the same exit code as without it.
      if (this.jsonEnabled()) {
        this.logJson({certificates: rows, unreadable, ok: false})
        this.exit(1)
      }

      throw new KflanError(`${bad.length + unreadable.length} certificate(s) with problems`, {
        hint: 'run `kflan init` to re-issue them and roll them out',
      })
    }

    return {certificates: rows, unreadable, ok: true}
  }
}
