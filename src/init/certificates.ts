import type {HostPhase} from '../engine/context.js'

import {removeFiles} from '../remote/file-remove.js'
/**
 * certificates: the CA, server and peer certificates to each etcd member, the flanneld client
 * certificate to every flannel host. Keys 0600. The kflan admin key that earlier versions copied
 * to the members is removed from them (it stays in the operator's state dir).
 */
import {certificateFiles, retiredFiles} from '../render/paths.js'
import {applyFiles, desiredFiles} from './common.js'

export const certificatesPhase: HostPhase = {
  kind: 'hosts',
  name: 'certificates',
  title: 'install the certificates',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd || h.host.roles.flannel),
  async runHost(ctx, h) {
    const pki = new Set(Object.values(certificateFiles(ctx.cluster, h.host)).flat())
    await applyFiles(
      ctx,
      h,
      desiredFiles(ctx, h).filter((f) => pki.has(f.path)),
    )
    // Only files kflan created (managed); known from preflight's stat, no extra round trip.
    const retired = retiredFiles(ctx.cluster, h.host).filter(
      (p) => h.fileStates?.get(p)?.exists && h.fileStates.get(p)!.managed,
    )
    if (retired.length > 0)
      await ctx.wet(h, `remove ${retired.join(', ')} (the admin key stays on the operator's machine)`, () =>
        removeFiles(h.remote, retired),
      )
  },
}
