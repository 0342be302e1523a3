/**
 * binaries: etcd and etcdctl to the etcd members, flanneld and mk-docker-opts.sh to the flannel
 * hosts, out of the inventory's release tarballs. Each tarball crosses the wire at most once per
 * host, uncompressed by ssh, and not at all when the installed binaries already match.
 */
import {join} from 'node:path'

import type {HostPhase} from '../engine/context.js'

import {installFromTarball} from '../remote/upload.js'
import {binaries} from '../render/index.js'

export const binariesPhase: HostPhase = {
  kind: 'hosts',
  name: 'binaries',
  title: 'install the etcd and flannel binaries',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd || h.host.roles.flannel),

  async runHost(ctx, h) {
    const specs = binaries(ctx.cluster, h.host)
    const byTarball = new Map<string, typeof specs>()
    for (const s of specs) byTarball.set(s.tarball, [...(byTarball.get(s.tarball) ?? []), s])
    for (const [tarball, list] of byTarball) {
      const {results} = await ctx.wetPlanned(
        h,
        (dryRun) =>
          installFromTarball(
            h.remote,
            tarball,
            list.map((s) => ({member: s.member, dest: s.dest})),
            {dryRun, localCacheDir: join(ctx.stateDir, 'cache'), known: h.fileStates},
          ),
        (r, dryRun) => [
          ...(r.upload?.result === 'uploaded' ? [`uploaded ${tarball.split('/').pop()}`] : []),
          ...r.results
            .filter((x) => x.result !== 'unchanged')
            .map((x) => `${dryRun ? 'would install' : x.result === 'created' ? 'installed' : 'updated'} ${x.dest}`),
        ],
      )
      for (const r of results) {
        if (r.result === 'unchanged') continue
        const spec = list.find((s) => s.dest === r.dest)!
        h.restart.add(spec.restart)
      }
    }
  },
}
