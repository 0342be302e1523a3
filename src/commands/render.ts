import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {ensureWritableDir, writeError} from '../inventory/local-files.js'
import {ensureClusterPki, pkiFiles, pkiSummary} from '../pki/cluster.js'
import {writeRendered} from '../render/write.js'

export default class Render extends BaseCommand<typeof Render> {
  static summary = "Write every host's files to a local directory."
  static description =
    "Generates or reuses the PKI in the state directory, then writes each host's files under DIR/<host>/<absolute path> and the flannel network config under DIR/_etcd/<prefix>/config. No host is contacted; the same inventory renders the same bytes."
  static examples = ['<%= config.bin %> render -i inventories/example.yaml -o out/']
  static flags = {
    output: Flags.string({char: 'o', summary: 'Output directory.', helpValue: 'DIR', required: true}),
  }

  async run(): Promise<void> {
    const cluster = this.cluster()
    const out = this.flags.output
    const hint = 'pass -o DIR naming a directory kflan may create files in'
    // Both directories are checked before any certificate is issued.
    ensureWritableDir(out, 'output directory', hint, 0o755)
    const stateDir = this.lockedStateDir(cluster)
    const report = await ensureClusterPki(cluster, stateDir)
    for (const line of pkiSummary(report)) this.log(`pki: ${line}`)
    const written = await writeRendered(cluster, out, {pki: pkiFiles(stateDir)}).catch((error) =>
      writeError(error, 'output directory', out, hint),
    )
    this.log(`wrote ${written.files} files for ${written.hosts} hosts to ${this.flags.output} (PKI in ${stateDir}/pki)`)
  }
}
