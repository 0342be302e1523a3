/**
 * flanneld: unit written, enabled and (re)started where needed; then wait until every flannel
 * host has its subnet file and its lease is visible in etcd with the host's address.
 */
import {KflanError} from '../errors.js'
import {etcdctl} from '../etcdctl.js'
import {parseLeases, parseSubnetEnv, subnetOfGateway, type Lease} from '../flannel-state.js'
import {flannelPaths} from '../render/paths.js'
import {shq} from '../remote/shell.js'
import type {HostRun, Phase, RunContext} from './context.js'
import {applyFiles, desiredFiles, enableStep, startStep, systemd, unitState, waitFor} from './common.js'

const START_TIMEOUT_MS = 45_000

export const flannelPhase: Phase = {
  name: 'flannel',
  title: 'start flanneld',
  clusterTitle: "wait for every host's lease in etcd",
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.flannel),

  async runHost(ctx, h) {
    const c = ctx.cluster
    const p = flannelPaths(c)
    await applyFiles(ctx, h, desiredFiles(ctx, h).filter((f) => f.path === p.unit))
    const st = unitState(h.facts.flanneld.unit) // as found before this run touched it
    const subnetFile = c.flannel.subnetFile
    const steps = enableStep('flanneld', st.enabled)
    if (st.active !== 'active') steps.push(startStep('flanneld'))
    else if (h.restart.has('flanneld')) steps.push({what: 'restart flanneld', cmd: 'systemctl restart --no-block flanneld'})
    await systemd(ctx, h, steps)
    h.restart.delete('flanneld')
    if (ctx.dryRun) return
    let env = ''
    const ok = await waitFor(async () => {
      const r = await h.remote.exec(`systemctl is-active flanneld; cat ${shq(subnetFile)} 2>/dev/null`)
      env = r.stdout
      // Type=notify: flanneld is active only after it wrote the subnet file.
      return /^active\n/.test(r.stdout) && /FLANNEL_SUBNET=/.test(r.stdout)
    }, START_TIMEOUT_MS, 300)
    if (!ok) {
      const j = await h.remote.exec('journalctl -u flanneld -n 8 --no-pager -o cat')
      throw new KflanError(`flanneld did not come up within ${START_TIMEOUT_MS / 1000}s (no ${subnetFile}); last log lines:\n${j.stdout.trim()}`, {
        hint: `check that the network config exists under ${c.flannel.prefix}/config and that etcd is reachable from ${h.host.address}`,
      })
    }
    const parsed = parseSubnetEnv(env)
    h.flannelSubnet = parsed.subnet
    h.flannelMtu = parsed.mtu
  },

  async runCluster(ctx) {
    if (ctx.dryRun) return
    const flannel = this.hosts(ctx)
    const via = ctx.hosts.find((h) => h.host.roles.etcd && h.etcdActive !== false) ?? ctx.hosts.find((h) => h.host.roles.etcd)!
    let leases: Lease[] = []
    let missing: HostRun[] = []
    const ok = await waitFor(async () => {
      leases = await readLeases(ctx, via)
      missing = flannel.filter((h) => !leases.some((l) => l.publicIp === h.host.address && h.flannelSubnet && l.subnet === subnetOfGateway(h.flannelSubnet)))
      return missing.length === 0
    }, 10_000, 500)
    if (!ok) {
      throw new KflanError(`no matching lease in etcd for ${missing.map((h) => `${h.host.name} (${h.flannelSubnet ?? 'no subnet'})`).join(', ')}`, {
        hint: `compare \`etcdctl get ${ctx.cluster.flannel.prefix}/subnets --prefix\` with /run/flannel/subnet.env on those hosts`,
      })
    }
  },
}

export async function readLeases(ctx: RunContext, via: HostRun): Promise<Lease[]> {
  const r = await via.remote.run(etcdctl(ctx.cluster, `get ${shq(ctx.cluster.flannel.prefix + '/subnets/')} --prefix`))
  return parseLeases(r.stdout)
}
