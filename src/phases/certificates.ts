/**
 * certificates: the CA, server and peer certificates to each etcd member (plus kflan's client
 * certificate for etcdctl), the flanneld client certificate to every flannel host. Keys 0600.
 */
import type {Phase} from './context.js'
import {applyFiles, desiredFiles} from './common.js'

export const certificatesPhase: Phase = {
  name: 'certificates',
  title: 'install the certificates',
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.etcd || h.host.roles.flannel),
  async runHost(ctx, h) {
    await applyFiles(ctx, h, desiredFiles(ctx, h).filter((f) => f.path.endsWith('.pem')))
  },
}
