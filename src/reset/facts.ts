/**
 * What `kflan reset` reads on a host besides the common facts (src/host/facts.ts): kflan's own
 * bookkeeping (managed list, backups), iptables, routes, flannel's runtime files, docker's
 * daemon.json, leftovers of an interrupted reset. The probes of src/host, one round trip.
 */
import type {Cluster} from '../inventory/model.js'
import type {RemoteFileState} from '../remote/file-stat.js'
import type {Remote} from '../remote/ssh.js'

import {type DaemonJson, daemonJsonProbe} from '../host/docker.js'
import {iptablesProbe} from '../host/iptables.js'
import {existingProbe, kflanFilesProbe, stateDirProbe, wantsProbe} from '../host/kflan.js'
import {type Route, routesProbe} from '../host/net.js'
import {parseProbes, runProbes} from '../host/probe.js'
import {DOCKER_OPTS_FILE} from '../render/paths.js'

/** The drop-in `kflan reset` puts in place for one start of docker (see docker.ts in this dir). */
export const RESET_DOCKER_DROPIN = '/run/systemd/system/docker.service.d/zz-kflan-reset.conf'

export interface ResetFacts {
  /** /var/lib/kflan exists. */
  stateDir: boolean
  /**
   * Every file in /var/lib/kflan/managed (kflan created it) or with a backup under
   * /var/lib/kflan/backup (kflan overwrote it), with its state; no content hashes (not needed).
   */
  files: Map<string, RemoteFileState>
  /** `iptables -S` of the filter and nat tables; undefined when iptables is missing. */
  iptables?: {filter: string[]; nat: string[]}
  /** IPv4 routes. */
  routes: Route[]
  /** flannel's runtime files that exist (subnet file, mk-docker-opts output). */
  runFiles: string[]
  /** /etc/docker/daemon.json sets these (then kflan must not pass them as flags: docker refuses both). */
  dockerDaemonJson: DaemonJson
  /** A drop-in left by an interrupted reset. */
  resetDropIn: boolean
  /** `*.wants/` symlinks of etcd.service / flanneld.service (systemctl disable removes them). */
  wants: string[]
}

export function resetProbes(c: Cluster, stateDir?: string) {
  return {
    stateDir: stateDirProbe(stateDir),
    files: kflanFilesProbe(stateDir),
    filter: iptablesProbe('filter'),
    nat: iptablesProbe('nat'),
    routes: routesProbe,
    runFiles: existingProbe('run', [c.flannel.subnetFile, DOCKER_OPTS_FILE]),
    daemonJson: daemonJsonProbe,
    resetDropIn: existingProbe('reset-dropin', [RESET_DOCKER_DROPIN]),
    wants: wantsProbe(['etcd.service', 'flanneld.service']),
  }
}

function toResetFacts(r: ReturnType<typeof parseProbes<ReturnType<typeof resetProbes>>>): ResetFacts {
  if (!r.complete) throw new Error('reset facts output is incomplete (no end marker)')
  return {
    stateDir: r.stateDir,
    files: r.files,
    iptables: r.filter && r.nat ? {filter: r.filter.rules, nat: r.nat.rules} : undefined,
    routes: r.routes,
    runFiles: r.runFiles,
    dockerDaemonJson: r.daemonJson,
    resetDropIn: r.resetDropIn.length > 0,
    wants: r.wants,
  }
}

/** Parses the script's output (pure). */
export function parseResetFacts(c: Cluster, out: string): ResetFacts {
  return toResetFacts(parseProbes(resetProbes(c), out, {sendMs: 0, recvMs: 0}))
}

export async function gatherResetFacts(remote: Remote, c: Cluster, stateDir?: string): Promise<ResetFacts> {
  return toResetFacts(await runProbes(remote, resetProbes(c, stateDir)))
}
