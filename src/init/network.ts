import type {ClusterPhase, HostRun, RunContext} from '../engine/context.js'

import {etcdctl, etcdctlV2} from '../cluster/etcdctl.js'
/**
 * flannel's network config in etcd under <prefix>/config, written through the API the installed
 * flannel reads: v3 for flannel 0.18 and newer, v2 before. A config that differs in Network or
 * backend is not overwritten while leases exist, unless --force.
 */
import {readLeases} from '../cluster/leases.js'
import {incompatibleChanges, parseNetworkConfig, sameConfig} from '../cluster/netconfig.js'
import {KflanError} from '../errors.js'
import {shq} from '../remote/shell.js'
import {networkConfig} from '../render/index.js'

export const networkPhase: ClusterPhase = {
  kind: 'cluster',
  name: 'network',
  title: "write flannel's network config to etcd",

  async runCluster(ctx) {
    const c = ctx.cluster
    const via = ctx.hosts.find((h) => h.host.roles.etcd)!
    const key = `${c.flannel.prefix}/config`
    const desiredText = networkConfig(c)
    const desired = parseNetworkConfig(desiredText)!
    const api = c.flannel.etcdApi
    const store = api === 'v3' ? v3Store(ctx, via) : v2Store(ctx, via)

    const what = `write ${key} (etcd ${api} API): ${desiredText}`
    // An etcd this run starts cannot be read in a dry run: the plan says what comes.
    if (!via.etcdActive) {
      await ctx.wet(via, what, () => sync(), {summary: true})
      return
    }

    await sync()

    async function sync(): Promise<void> {
      const currentText = await store.get(key)
      if (currentText !== undefined) {
        const current = parseNetworkConfig(currentText)
        if (current && sameConfig(current, desired)) return
        const leases = (await readLeases(c, via.remote)).length
        const incompatible = current ? incompatibleChanges(current, desired) : []
        if (leases > 0 && incompatible.length > 0 && !ctx.options.force) {
          throw new KflanError(
            `${key} differs from the inventory while ${leases} flannel lease(s) exist: ${incompatible.join('; ')}`,
            {
              hint: 'flannel cannot change its network or backend at runtime. Keep the inventory as it was, or re-run with --force and then restart flanneld (and docker) on every host',
            },
          )
        }
      }

      await ctx.wet(via, what, () => store.put(key, desiredText))
    }
  },
}

interface Store {
  get(key: string): Promise<string | undefined>
  put(key: string, value: string): Promise<unknown>
}

function v3Store(ctx: RunContext, via: HostRun): Store {
  const c = ctx.cluster
  return {
    async get(key) {
      const r = await via.remote.run(etcdctl(c, `get ${shq(key)} --print-value-only`))
      return r.stdout.trim() === '' ? undefined : r.stdout.trim()
    },
    put: (key, value) => via.remote.run(etcdctl(c, `put ${shq(key)} ${shq(value)}`)),
  }
}

function v2Store(ctx: RunContext, via: HostRun): Store {
  const c = ctx.cluster
  return {
    async get(key) {
      // Exit code 4 with "Key not found" means absent.
      const r = await via.remote.exec(etcdctlV2(c, `get ${shq(key)}`))
      if (r.code === 0) return r.stdout.trim()
      if (/Key not found/i.test(r.stderr)) return undefined
      throw new KflanError(`etcdctl (v2) get ${key} failed on ${via.host.name}: ${r.stderr.trim()}`, {
        hint: "flannel < 0.18 needs etcd started with --enable-v2 (kflan sets it when the inventory's flannel version needs it)",
      })
    },
    put: (key, value) => via.remote.run(etcdctlV2(c, `set ${shq(key)} ${shq(value)}`)),
  }
}
