/**
 * network: docker taken off the flannel network: kflan's drop-in out, flannel's iptables rules,
 * devices, routes and runtime files out, then docker restarted (once with its default address
 * pools when docker0 would keep the flannel subnet).
 */
import {posix} from 'node:path'

import type {HostPhase, HostRun, RunContext} from '../../engine/context.js'
import type {ResetState} from '../state.js'

import {readDocker0} from '../../host/net.js'
import {readProbe} from '../../host/probe.js'
import {unitsProbe} from '../../host/units.js'
import {waitFor} from '../../init/common.js'
import {removeFiles} from '../../remote/file-remove.js'
import {shq} from '../../remote/shell.js'
import {poolsDropIn, RESET_DOCKER_DROPIN} from '../docker.js'
import {describeFileOp} from '../file-ops.js'
import {describeOp, iptablesScript} from '../iptables.js'
import {hasNetworkWork, type HostResetPlan, onFlannelSubnet} from '../plan.js'

export function networkPhase(state: ResetState): HostPhase {
  return {
    kind: 'hosts',
    name: 'network',
    title: 'take docker off the flannel network',
    hosts: (ctx) => ctx.targets.filter((h) => hasNetworkWork(state.plan(h))),
    async runHost(ctx, h) {
      const p = state.plan(h)
      if (p.resetDropIn) {
        await ctx.wet(h, `remove ${RESET_DOCKER_DROPIN} (left by an interrupted reset)`, () =>
          h.remote.run(`rm -f ${shq(RESET_DOCKER_DROPIN)} && systemctl daemon-reload`),
        )
      }

      if (p.dropIn) {
        await ctx.wet(h, describeFileOp(p.dropIn), async () => {
          await removeFiles(h.remote, [p.dropIn!.path])
          await h.remote.run('systemctl daemon-reload')
        })
      }

      if (p.iptables.length > 0) {
        const out = await ctx.wet(h, p.iptables.map(describeOp), () =>
          h.remote.run('sh -s', {stdin: iptablesScript(p.iptables)}),
        )
        for (const l of (out?.stdout ?? '').split('\n')) if (l.startsWith('warn: ')) ctx.warn(h, l.slice(6))
      }

      for (const link of p.links) {
        await ctx.wet(h, `delete device ${link}`, () =>
          h.remote.run(`ip link del ${shq(link)} 2>/dev/null || ! ip link show ${shq(link)} >/dev/null 2>&1`),
        )
      }

      for (const route of p.routes) {
        await ctx.wet(h, `delete route ${route}`, () =>
          h.remote.run(`ip -4 route del ${route.split(' ').map(shq).join(' ')} 2>/dev/null || true`),
        )
      }

      if (p.runFiles.length > 0) {
        await ctx.wet(h, `remove ${p.runFiles.join(', ')}`, () =>
          h.remote.run(`rm -f -- ${p.runFiles.map(shq).join(' ')}`),
        )
      }

      await dockerStep(ctx, h, p)
    },
  }
}

async function dockerStep(ctx: RunContext, h: HostRun, p: HostResetPlan): Promise<void> {
  const c = ctx.cluster
  const d = p.docker
  if (d.action === 'none') return
  if (d.action === 'leave-stopped') {
    if (d.deleteBridge) {
      await ctx.wet(h, `delete docker0 (${p.dockerOnFlannel}); docker stays stopped as it was`, () =>
        h.remote.run('ip link del docker0 2>/dev/null || true'),
      )
      ctx.warn(
        h,
        'docker was stopped and disabled before the reset: left so. It remembers the flannel subnet for docker0 until it is started once with --bip or --default-address-pool',
      )
    }

    return
  }

  const offFlannel = async () => {
    const b = await readDocker0(h.remote)
    return !b?.address || b.prefixLen === undefined || !onFlannelSubnet(c, b.address, b.prefixLen)
  }

  const what = `restart docker ${d.why}${d.pools ? ", once with docker's default address pools so docker0 leaves the flannel subnet" : ''}`
  await ctx.wet(h, what, async () => {
    if (!(d.pools && (await restartWithPools(ctx, h, offFlannel))))
      await h.remote.run('systemctl restart docker', {timeoutMs: ctx.cluster.timeouts.dockerStart})
    if (!(await waitFor(offFlannel, 15_000, 300))) {
      const b = await readDocker0(h.remote)
      ctx.warn(
        h,
        `docker0 is still ${b?.address}/${b?.prefixLen}, in the flannel network: docker keeps its default bridge's address (live-restore with running containers, or a bip in /etc/docker/daemon.json)`,
      )
    }
  })
}

/**
 * Restarts docker once with a transient drop-in that adds its default address pools, so docker0
 * leaves the flannel subnet, then takes the drop-in out. True when docker runs afterwards.
 */
async function restartWithPools(ctx: RunContext, h: HostRun, offFlannel: () => Promise<boolean>): Promise<boolean> {
  const {execStart} = (await readProbe(h.remote, unitsProbe(['docker.service'])))['docker.service']
  if (!execStart) return false
  try {
    // Not through writeFiles: this file is not kflan's to keep (never in the managed list).
    await h.remote.run(`mkdir -p ${shq(posix.dirname(RESET_DOCKER_DROPIN))} && cat > ${shq(RESET_DOCKER_DROPIN)}`, {
      stdin: poolsDropIn(execStart),
    })
    await h.remote.run('systemctl daemon-reload && systemctl restart docker', {
      timeoutMs: ctx.cluster.timeouts.dockerStart,
    })
    await waitFor(offFlannel, 15_000, 300)
  } catch (error) {
    ctx.warn(
      h,
      `docker did not start with its default address pools (${(error as Error).message.split('\n')[0]}); starting it as installed`,
    )
  } finally {
    await h.remote.run(
      `rm -f -- ${shq(RESET_DOCKER_DROPIN)}; rmdir ${shq(posix.dirname(RESET_DOCKER_DROPIN))} 2>/dev/null; systemctl daemon-reload`,
    )
  }

  return (await h.remote.exec('systemctl is-active docker')).stdout.trim() === 'active'
}
