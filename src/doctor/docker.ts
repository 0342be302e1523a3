/**
 * docker on the flannel subnet (pure): kflan's drop-in present and effective (systemd loaded it,
 * ExecStart carries $DOCKER_NETWORK_OPTIONS, the running dockerd got --bip), docker active, and
 * docker0's address and MTU equal to the subnet file's.
 */
import type {Cluster, Host} from '../inventory/model.js'

import {docker0Of} from '../host/net.js'
import {DOCKER_DROPIN} from '../render/paths.js'
import {subnetEnvOf} from './flannel.js'
import {expectedOwned} from './owned.js'
import {type CheckResult, type DoctorInput, type HostData, resultFor, withData} from './types.js'

/** The drop-in `kflan init` would write on this host (pure). */
export function expectedDropIn(c: Cluster, h: Host, d: HostData): string | undefined {
  return expectedOwned(c, h, d).get(DOCKER_DROPIN)
}

export function dockerChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  if (!c.docker.enabled) return []
  const out: CheckResult[] = []
  for (const s of withData(input).filter((x) => x.host.roles.flannel)) out.push(...hostDocker(c, s.host, s.data))
  return out
}

export function hostDocker(c: Cluster, h: Host, d: HostData): CheckResult[] {
  const out: CheckResult[] = []
  const r = (id: string) => resultFor(id, h.name)
  const u = d.units.docker

  // Drop-in
  const dr = r('docker.dropin')
  const file = d.files[DOCKER_DROPIN]
  const restart = `\`systemctl daemon-reload && systemctl restart docker\` on ${h.name}`
  if (file === undefined)
    out.push(
      dr.fail(
        `${DOCKER_DROPIN} is missing: docker starts without flannel's --bip/--mtu`,
        'run `kflan init` to write it (it restarts docker)',
      ),
    )
  else if (!/\$\{?DOCKER_NETWORK_OPTIONS\}?/.test(file))
    out.push(
      dr.fail(`${DOCKER_DROPIN} does not pass $DOCKER_NETWORK_OPTIONS to dockerd`, 'run `kflan init` to rewrite it'),
    )
  else if (u && !u.dropInPaths.includes(DOCKER_DROPIN))
    out.push(
      dr.fail(
        `${DOCKER_DROPIN} exists, but systemd has not loaded it (DropInPaths: ${u.dropInPaths.join(' ') || 'none'})`,
        restart,
      ),
    )
  else if (u && u.execStart && !/DOCKER_NETWORK_OPTIONS/.test(u.execStart))
    out.push(
      dr.fail(
        `docker.service's ExecStart lacks $DOCKER_NETWORK_OPTIONS (another drop-in overrides it?): ${u.execStart}`,
        `check \`systemctl cat docker\` for a later ExecStart=, then ${restart}`,
      ),
    )
  else if (u?.activeState === 'active' && d.dockerCmdline && !/--bip[= ]/.test(d.dockerCmdline))
    out.push(
      dr.fail(
        `the running dockerd has no --bip (started before the drop-in, or ${'$'}DOCKER_NETWORK_OPTIONS was empty): ${d.dockerCmdline.trim()}`,
        `${restart}; if it persists, check /run/flannel/docker (mk-docker-opts.sh output)`,
      ),
    )
  // Its lines against what kflan renders: files.managed.
  else
    out.push(
      dr.ok(
        `${DOCKER_DROPIN} in effect${d.dockerCmdline ? `: dockerd ${(/--bip[= ]\S+/.exec(d.dockerCmdline) ?? [''])[0]}` : ''}`,
      ),
    )

  // Unit
  const ur = r('docker.unit')
  if (!u || u.loadState === 'not-found')
    out.push(
      ur.fail(
        'docker.service is not installed',
        'install docker from the distribution (docker.io or docker-ce), then run `kflan init`',
      ),
    )
  else if (u.activeState === 'active') out.push(ur.ok(`docker.service is active (${u.subState ?? ''})`))
  else
    out.push(
      ur.fail(
        `docker.service is ${u.activeState}${u.subState ? ` (${u.subState})` : ''}`,
        `run \`systemctl start docker\` on ${h.name} (it needs flanneld) and read \`journalctl -u docker -n 50\``,
      ),
    )

  // docker0
  const env = subnetEnvOf(c, d)
  if (env?.subnet) {
    const br = r('docker.bridge')
    const b = docker0Of(d.interfaces)
    const [gw, len] = env.subnet.split('/')
    if (b) {
      const problems: string[] = []
      if (b.address !== gw || String(b.prefixLen) !== len)
        problems.push(
          `docker0 is ${b.address ? `${b.address}/${b.prefixLen}` : 'without an IPv4 address'}, not ${env.subnet} (FLANNEL_SUBNET)`,
        )
      if (env.mtu !== undefined && b.mtu !== env.mtu) problems.push(`MTU ${b.mtu}, not ${env.mtu} (FLANNEL_MTU)`)
      out.push(
        problems.length === 0
          ? br.ok(`docker0 ${env.subnet} MTU ${b.mtu}, as in ${c.flannel.subnetFile}`)
          : br.fail(
              problems.join('; '),
              `docker must start with flannel's options: check docker.dropin, then ${restart}`,
            ),
      )
    } else {
      out.push(br.fail('docker0 does not exist', `start docker (${restart})`))
    }
  }

  return out
}
