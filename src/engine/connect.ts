import type {Phase} from './context.js'

/** connect: one SSH connection per host (host key verified), then its facts in one round trip. */
import {gatherFacts} from '../host/facts.js'
import {BastionPool} from '../remote/bastion.js'
import {Remote} from '../remote/ssh.js'
import {targetFromHost} from '../remote/target.js'

export interface ConnectSettings {
  knownHostsPath: string
  acceptNewHostKeys: boolean
}

export function connectPhase(s: ConnectSettings): Phase {
  const bastionPool = new BastionPool()
  return {
    kind: 'hosts',
    name: 'connect',
    title: 'connect and gather facts',
    hosts: (ctx) => ctx.hosts,
    async runHost(ctx, h) {
      h.remote = await Remote.connect(targetFromHost(h.host), {
        knownHostsPath: s.knownHostsPath,
        acceptNew: s.acceptNewHostKeys,
        logger: ctx.logger,
        bastionPool,
      })
      if (h.remote.hostKey.action === 'repinned') {
        ctx.warn(
          h,
          `SSH host key changed to ${h.remote.hostKey.keyType} ${h.remote.hostKey.fingerprint}, which the inventory's hostKey pins: the old key in ${s.knownHostsPath} was replaced`,
        )
      }

      h.facts = await gatherFacts(h.remote, {etcdDataDir: ctx.cluster.etcd.dataDir})
    },
  }
}
