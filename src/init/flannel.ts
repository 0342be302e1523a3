import type {HostPhase, HostRun, RunContext} from '../engine/context.js'
import type {HostFacts} from '../host/facts.js'
import type {Cluster, Host} from '../inventory/model.js'

import {parseSubnetEnv, subnetOfGateway} from '../cluster/flannel-state.js'
/**
 * flanneld: unit written, enabled and (re)started where needed (a failed unit reset first, a
 * vxlan device whose MTU differs from the config recreated); then wait until every flannel host
 * has its subnet file and its lease is visible in etcd with the host's address, restarting a
 * flanneld whose lease is gone.
 */
import {backendMtuSupported, expectedVxlanMtu, vxlanDevice} from '../cluster/flannel.js'
import {type Lease, leasePrefix, readLeases} from '../cluster/leases.js'
import {KflanError} from '../errors.js'
import {interfaceWithAddress} from '../host/net.js'
import {shq} from '../remote/shell.js'
import {flannelPaths} from '../render/paths.js'
import {
  applyFiles,
  desiredFiles,
  enableStep,
  resetFailedStep,
  startStep,
  systemd,
  unitState,
  waitFor,
} from './common.js'

export const flannelPhase: HostPhase = {
  kind: 'hosts',
  name: 'flannel',
  title: 'start flanneld',
  clusterTitle: "wait for every host's lease in etcd",
  hosts: (ctx) => ctx.targets.filter((h) => h.host.roles.flannel),

  async runHost(ctx, h) {
    const c = ctx.cluster
    const p = flannelPaths(c)
    await applyFiles(
      ctx,
      h,
      desiredFiles(ctx, h).filter((f) => f.path === p.unit),
    )
    const st = unitState(h.facts.flanneld.unit) // as found before this run touched it
    const steps = [...enableStep('flanneld', st.enabled), ...resetFailedStep('flanneld', st)]
    const mtu = deviceMtuChange(c, h.host, h.facts)
    let restarting = false
    if (mtu) {
      // flanneld keeps an existing device's MTU: stop it, delete the device, start it again.
      steps.push({
        what: `recreate ${mtu.device} (MTU ${mtu.from} → ${mtu.to}: flanneld keeps an existing device's MTU) and ${st.active === 'active' ? 'restart' : 'start'} flanneld`,
        cmd: `systemctl stop flanneld && { ip link del ${shq(mtu.device)} 2>/dev/null || true; } && systemctl start --no-block flanneld`,
      })
      restarting = st.active === 'active'
    } else if (st.active !== 'active') steps.push(startStep('flanneld'))
    else if (h.restart.has('flanneld')) {
      steps.push({what: 'restart flanneld', cmd: 'systemctl restart --no-block flanneld'})
      restarting = true
    }

    const before = restarting ? await invocation(h) : undefined
    await systemd(ctx, h, steps, {after: () => waitUp(ctx, h, before)})
    h.restart.delete('flanneld')
  },

  async runCluster(ctx) {
    // Only a live run has leases to wait for.
    await ctx.wet(undefined, [], () => waitLeases(ctx, this.hosts(ctx)))
  },
}

/** Waits until every flannel host's lease is in etcd, restarting a flanneld whose lease is gone. */
async function waitLeases(ctx: RunContext, flannel: HostRun[]): Promise<void> {
  const via =
    ctx.hosts.find((h) => h.host.roles.etcd && h.etcdActive !== false) ?? ctx.hosts.find((h) => h.host.roles.etcd)!
  let missing = await missingLeases(ctx, via, flannel, 3000)
  if (missing.length > 0) {
    // A running flanneld without its lease (deleted in etcd, or an etcd restored from a
    // snapshot) registers again when it restarts; it keeps its subnet from the subnet file.
    await Promise.all(
      missing.map(async (h) => {
        const before = await invocation(h)
        await systemd(
          ctx,
          h,
          [
            {
              what: `restart flanneld (no lease in etcd for ${h.flannelSubnet ? subnetOfGateway(h.flannelSubnet) : 'its subnet'})`,
              cmd: 'systemctl restart --no-block flanneld',
            },
          ],
          {after: () => waitUp(ctx, h, before)},
        )
      }),
    )
    missing = await missingLeases(ctx, via, flannel, 10_000)
  }

  if (missing.length > 0) {
    throw new KflanError(
      `no matching lease in etcd for ${missing.map((h) => `${h.host.name} (${h.flannelSubnet ?? 'no subnet'})`).join(', ')}`,
      {
        hint: `compare the leases under ${leasePrefix(ctx.cluster)} (etcd ${ctx.cluster.flannel.etcdApi} API, the one flannel ${ctx.cluster.flannel.version} uses) with ${ctx.cluster.flannel.subnetFile} on those hosts, and read \`journalctl -u flanneld\` there`,
      },
    )
  }
}

/** The vxlan device's MTU when it differs from what flanneld would create now (pure). */
export function deviceMtuChange(
  c: Cluster,
  h: Host,
  f: HostFacts,
): {device: string; from: number; to: number} | undefined {
  // Before 0.21.3 flanneld sets no MTU on the device (the kernel derives it from the interface).
  if (!backendMtuSupported(c.flannel.version)) return undefined
  const device = vxlanDevice(c)
  const dev = device ? f.interfaces.find((i) => i.name === device) : undefined
  if (!device || dev?.mtu === undefined) return undefined
  const to = expectedVxlanMtu(c, interfaceWithAddress(f.interfaces, h.address)?.mtu)
  return to !== undefined && to !== dev.mtu ? {device, from: dev.mtu, to} : undefined
}

/** flanneld's InvocationID: a restart is complete once it changed and the unit is active. */
async function invocation(h: HostRun): Promise<string> {
  return (await h.remote.exec('systemctl show -p InvocationID --value flanneld')).stdout.trim()
}

/** Waits for flanneld active (Type=notify: after it wrote the subnet file) with a new invocation. */
async function waitUp(ctx: RunContext, h: HostRun, before: string | undefined): Promise<void> {
  const {subnetFile} = ctx.cluster.flannel
  const timeoutMs = ctx.cluster.timeouts.flannelStart
  let env = ''
  const ok = await waitFor(
    async () => {
      const r = await h.remote.exec(
        `systemctl show -p InvocationID --value flanneld; systemctl is-active flanneld; cat ${shq(subnetFile)} 2>/dev/null`,
      )
      const [id, active] = r.stdout.split('\n')
      env = r.stdout
      return (
        (before === undefined || (id !== '' && id !== before)) &&
        active === 'active' &&
        /FLANNEL_SUBNET=/.test(r.stdout)
      )
    },
    timeoutMs,
    300,
  )
  if (!ok) {
    const j = await h.remote.exec('journalctl -u flanneld -n 8 --no-pager -o cat')
    throw new KflanError(
      `flanneld did not come up within ${timeoutMs / 1000}s (no ${subnetFile}); last log lines:\n${j.stdout.trim()}`,
      {
        hint: `check that the network config exists under ${ctx.cluster.flannel.prefix}/config and that etcd is reachable from ${h.host.address}`,
      },
    )
  }

  const parsed = parseSubnetEnv(env)
  h.flannelSubnet = parsed.subnet
  h.flannelMtu = parsed.mtu
}

/** The hosts whose lease (their subnet, their address as PublicIP) is not in etcd within timeoutMs. */
async function missingLeases(ctx: RunContext, via: HostRun, hosts: HostRun[], timeoutMs: number): Promise<HostRun[]> {
  let missing: HostRun[] = []
  await waitFor(
    async () => {
      const leases: Lease[] = await readLeases(ctx.cluster, via.remote)
      missing = hosts.filter(
        (h) =>
          !leases.some(
            (l) => l.publicIp === h.host.address && h.flannelSubnet && l.subnet === subnetOfGateway(h.flannelSubnet),
          ),
      )
      return missing.length === 0
    },
    timeoutMs,
    500,
  )
  return missing
}
