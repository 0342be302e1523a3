import type {HostPhase} from '../engine/context.js'

/**
 * docker: a drop-in that starts the installed docker.service with $DOCKER_NETWORK_OPTIONS from
 * flannel, ordered after flanneld but not bound to it (Wants=, see docs/init.md). Docker restarts
 * only when the drop-in changed or docker0 is not at the host's flannel gateway address with
 * flannel's MTU; a docker unit found failed (start-limit-hit) is reset first.
 */
import {KflanError} from '../errors.js'
import {type Bridge, readDocker0} from '../host/net.js'
import {DOCKER_DROPIN} from '../render/paths.js'
import {applyFiles, desiredFiles, enableStep, resetFailedStep, systemd, unitState, waitFor} from './common.js'

export const dockerPhase: HostPhase = {
  kind: 'hosts',
  name: 'docker',
  title: 'start docker in the flannel subnet',
  hosts: (ctx) => (ctx.cluster.docker.enabled ? ctx.targets.filter((h) => h.host.roles.flannel) : []),

  async runHost(ctx, h) {
    await applyFiles(
      ctx,
      h,
      desiredFiles(ctx, h).filter((f) => f.path === DOCKER_DROPIN),
    )
    const st = unitState(h.facts.docker.unit) // as found before this run touched it
    const steps = [...enableStep('docker', st.enabled), ...resetFailedStep('docker', st)]
    const bridge = (await readDocker0(h.remote)) ?? {}
    // Known once flanneld is up in this run; a dry run starts nothing, so it cannot compare docker0.
    const want = h.flannelSubnet
    const matches = (b: Bridge) =>
      want !== undefined && b.cidr === want && (h.flannelMtu === undefined || b.mtu === h.flannelMtu)
    if (st.active !== 'active' || h.restart.has('docker') || (want !== undefined && !matches(bridge))) {
      const why =
        st.active === 'active'
          ? h.restart.has('docker')
            ? 'drop-in changed'
            : `docker0 is ${bridge.cidr ?? 'absent'} mtu ${bridge.mtu}, not ${want} mtu ${h.flannelMtu}`
          : 'not running'
      // reset-failed also clears the start counter: docker.service's StartLimitBurst=3 in 60 s
      // refuses a restart after recent restarts even when docker is running.
      steps.push({
        what: `restart docker (${why})`,
        cmd: '{ systemctl reset-failed docker 2>/dev/null || true; } && systemctl restart docker',
      })
    }

    await systemd(ctx, h, steps, {timeoutMs: ctx.cluster.timeouts.dockerStart, after: waitBridge})
    h.restart.delete('docker')

    async function waitBridge(): Promise<void> {
      if (want === undefined) return
      let now = bridge
      const ok = await waitFor(
        async () => {
          now = (await readDocker0(h.remote)) ?? {}
          return matches(now)
        },
        10_000,
        300,
      )
      if (!ok) {
        throw new KflanError(
          `docker0 is ${now.cidr ?? 'absent'} mtu ${now.mtu} after restarting docker, expected ${want} mtu ${h.flannelMtu}`,
          {
            hint: 'check `systemctl cat docker` for another drop-in overriding ExecStart, and /run/flannel/docker',
          },
        )
      }
    }
  },
}
