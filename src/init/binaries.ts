/**
 * binaries: etcd and etcdctl to the etcd members, flanneld and mk-docker-opts.sh to the flannel
 * hosts, out of the inventory's release tarballs. Each tarball crosses the wire at most once per
 * host, uncompressed by ssh, and not at all when the installed binaries already match.
 */
import {join} from 'node:path'

import type {Phase} from '../engine/context.js'

import {installFromTarball} from '../remote/upload.js'
import {binaries} from '../render/index.js'

export const binariesPhase: Phase = {
  name: 'binaries',
  title: 'install the etcd and flannel binaries',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd || h.host.roles.flannel),

  async runHost(ctx, h) {
    const specs = binaries(ctx.cluster, h.host)
    const byTarball = new Map<string, typeof specs>()
    for (const s of specs) byTarball.set(s.tarball, [...(byTarball.get(s.tarball) ?? []), s])
    for (const [tarball, list] of byTarball) {
      const {results, upload} = await installFromTarball(
        h.remote,
        tarball,
        list.map((s) => ({member: s.member, dest: s.dest})),
        {dryRun: ctx.dryRun, localCacheDir: join(ctx.stateDir, 'cache'), known: h.fileStates},
      )
      if (upload?.result === 'uploaded') h.changes.push(`uploaded ${tarball.split('/').pop()}`)
      for (const r of results) {
        if (r.result === 'unchanged') continue
        h.changes.push(`${ctx.dryRun ? 'would install' : r.result === 'created' ? 'installed' : 'updated'} ${r.dest}`)
        const spec = list.find((s) => s.dest === r.dest)!
        h.restart.add(spec.restart)
      }
    }
  },
}
