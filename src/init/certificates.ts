import type {Phase} from '../engine/context.js'

import {removeFiles} from '../remote/file-remove.js'
/**
 * certificates: the CA, server and peer certificates to each etcd member, the flanneld client
 * certificate to every flannel host. Keys 0600. The kflan admin key that earlier versions copied
 * to the members is removed from them (it stays in the operator's state dir).
 */
import {retiredFiles} from '../render/paths.js'
import {applyFiles, desiredFiles} from './common.js'

export const certificatesPhase: Phase = {
  name: 'certificates',
  title: 'install the certificates',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd || h.host.roles.flannel),
  async runHost(ctx, h) {
    await applyFiles(
      ctx,
      h,
      desiredFiles(ctx, h).filter((f) => f.path.endsWith('.pem')),
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
