/**
 * `kflan doctor`: the live cluster checked against the inventory.
 *
 * runDoctor connects to every host in parallel (kflan's known_hosts; nothing new is recorded
 * unless the inventory pins the key), gathers each host's data in one script (plus its keys and
 * clock on parallel channels), asks a reachable member about members that could not be reached,
 * sends the data-plane pings (one round trip per flannel host), and evaluates the pure checks.
 *
 * With `hosts` (what `kflan join node` uses): host checks only for those hosts; the data-plane
 * pings go from them to every other flannel host and from every other flannel host to them;
 * cluster-level checks (etcd health, members, leader, alarms, network config, leases) are kept:
 * they cost nothing extra, since the etcd members are asked anyway for the leases. An unreachable
 * helper host (one not selected) is a warning, not a failure.
 */
import {readFile} from 'node:fs/promises'
import {performance} from 'node:perf_hooks'

import type {CheckResult, ConnectProblem, DoctorInput, DoctorReport, HostState} from './types.js'

import {knownHostsPath} from '../engine/session.js'
import {hintOf, InputError, messageOf} from '../errors.js'
import {didYouMean} from '../inventory/diagnostics.js'
import {type Cluster, etcdMembers} from '../inventory/model.js'
import {CA_NAME, certificatePaths} from '../pki/index.js'
import {BastionPool} from '../remote/bastion.js'
import {AuthError, HostKeyError, UnreachableHostError} from '../remote/errors.js'
import {type Logger, nullLogger} from '../remote/logger.js'
import {closeAll, Remote} from '../remote/ssh.js'
import {targetFromHost} from '../remote/target.js'
import {certChecks} from './certs.js'
import {dataplaneChecks, pingPlan, type PingPlan} from './dataplane.js'
import {dockerChecks} from './docker.js'
import {etcdChecks} from './etcd.js'
import {flannelChecks} from './flannel.js'
import {followUp, gatherHost} from './gather.js'
import {hostChecks, sshChecks} from './host.js'
import {networkChecks} from './network.js'
import {etcdTlsChecks, ownedFileChecks} from './owned.js'
import {pingFrom} from './ping.js'

export {formatReport} from './report.js'
export type {CheckResult, DoctorReport, Status} from './types.js'

export interface DoctorOptions {
  /** Limit host checks to these hosts (by inventory name). */
  hosts?: string[]
  logger?: Logger
  /** Per host SSH connect timeout. Default 5000. */
  connectTimeoutMs?: number
  /** Environment for password variables (default process.env). */
  env?: NodeJS.ProcessEnv
  now?: Date
}

/** Every check, in group order (pure). */
export function evaluate(input: DoctorInput, plan: PingPlan = pingPlan(input)): CheckResult[] {
  const all = [
    ...sshChecks(input),
    ...hostChecks(input),
    ...etcdChecks(input),
    ...certChecks(input),
    ...networkChecks(input),
    ...flannelChecks(input),
    ...dockerChecks(input),
    ...ownedFileChecks(input),
    ...etcdTlsChecks(input),
    ...dataplaneChecks(input, plan),
  ]
  return limitTo(all, input.selected)
}

/**
 * With selected hosts: their host results, every cluster result, the pings towards them from the
 * others, and the others' SSH problems as warnings (they limit what could be checked).
 */
export function limitTo(results: CheckResult[], selected: Set<string> | undefined): CheckResult[] {
  if (!selected) return results
  return results.flatMap((r) => {
    if (r.scope === 'cluster' || selected.has(r.host!) || r.id === 'dataplane.ping') return [r]
    if (r.id === 'ssh.reachable' && r.status !== 'ok') {
      return [
        {
          ...r,
          status: 'warn' as const,
          message: `${r.message} (not a checked host; the checks that needed it were skipped)`,
        },
      ]
    }

    return []
  })
}

export function summarize(
  cluster: Cluster,
  results: CheckResult[],
  durationMs: number,
  selected?: Set<string>,
): DoctorReport {
  const summary = {ok: 0, warn: 0, fail: 0}
  for (const r of results) summary[r.status]++
  return {
    cluster: cluster.name,
    ok: summary.fail === 0,
    ...(selected ? {limitedTo: [...selected]} : {}),
    summary,
    durationMs: Math.round(durationMs),
    results,
  }
}

function problemOf(err: unknown): {kind: ConnectProblem; message: string; hint?: string} {
  const kind: ConnectProblem =
    err instanceof HostKeyError
      ? 'hostkey'
      : err instanceof AuthError
        ? 'auth'
        : err instanceof UnreachableHostError
          ? 'unreachable'
          : 'error'
  return {kind, message: messageOf(err), hint: hintOf(err)}
}

/** Runs every check against the live hosts; never throws for a host problem (only for bad input). */
export async function runDoctor(
  cluster: Cluster,
  stateDir: string,
  opts: DoctorOptions = {},
): Promise<DoctorReport & {results: CheckResult[]}> {
  const t0 = performance.now()
  const selected = opts.hosts && opts.hosts.length > 0 ? new Set(opts.hosts) : undefined
  for (const name of selected ?? []) {
    if (!cluster.hosts.some((h) => h.name === name)) {
      const guess = didYouMean(
        name,
        cluster.hosts.map((h) => h.name),
      )
      throw new InputError(`${name} is not a host in the inventory${guess ? `; did you mean ${guess}?` : ''}`, {
        hint: `hosts: ${cluster.hosts.map((h) => h.name).join(', ')}`,
      })
    }
  }

  const involved = cluster.hosts.filter((h) => h.roles.etcd || h.roles.flannel || selected?.has(h.name))
  const logger = opts.logger ?? nullLogger
  const bastionPool = new BastionPool()
  const states: HostState[] = involved.map((host) => ({host, connected: false}))
  const remotes = new Map<string, Remote>()
  const localCaPem = await readFile(certificatePaths(stateDir, CA_NAME).certFile, 'utf8').catch(() => undefined)
  // One member does the cluster reads (member list, alarms, config, leases) against every endpoint.
  const reader = involved.find((h) => h.roles.etcd)?.name
  let results: CheckResult[]
  try {
    // Connect and gather, each host on its own as soon as it is connected.
    await Promise.all(
      states.map(async (s) => {
        let remote: Remote
        try {
          remote = await Remote.connect(targetFromHost(s.host, opts.env), {
            knownHostsPath: knownHostsPath(stateDir),
            acceptNew: false,
            logger,
            bastionPool,
            connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
          })
        } catch (error) {
          s.error = problemOf(error)
          return
        }

        remotes.set(s.host.name, remote)
        s.connected = true
        s.hostKey = remote.hostKey
        try {
          s.data = await gatherHost(remote, cluster, s.host, {reads: s.host.name === reader})
        } catch (error) {
          s.gatherError = messageOf(error)
        }
      }),
    )

    // Second round, only when needed: members nobody could log in to are asked about by a
    // reachable member, which also does the cluster reads if the reader could not.
    const members = etcdMembers(cluster)
    const unseen = members.filter((m) => !states.find((s) => s.host.name === m.name)?.data?.etcd)
    const haveReads = states.some((s) => s.data?.etcd?.reads)
    const via = states.find((s) => s.data?.etcd && remotes.has(s.host.name))
    if (via && (unseen.length > 0 || !haveReads)) {
      try {
        const more = await followUp(remotes.get(via.host.name)!, cluster, {members: unseen, reads: !haveReads})
        Object.assign(via.data!.etcd!.endpoints, more.endpoints)
        if (more.reads) via.data!.etcd!.reads = more.reads
      } catch (error) {
        logger.log(via.host.name, {
          ts: new Date().toISOString(),
          kind: 'note',
          message: `doctor: follow-up on ${via.host.name} failed: ${messageOf(error)}`,
        })
      }
    }

    const input: DoctorInput = {
      cluster,
      hosts: states,
      localCaPem,
      pings: new Map(),
      now: opts.now ?? new Date(),
      selected,
    }
    const plan = pingPlan(input)
    await Promise.all(
      plan.pairs.map(async ({source, targets}) => {
        const remote = remotes.get(source.name)
        if (!remote) return
        try {
          input.pings.set(
            source.name,
            await pingFrom(
              remote,
              source.address,
              targets.map((t) => ({target: t.name, address: t.address})),
            ),
          )
        } catch (error) {
          logger.log(source.name, {
            ts: new Date().toISOString(),
            kind: 'note',
            message: `doctor: pings failed: ${messageOf(error)}`,
          })
        }
      }),
    )
    results = evaluate(input, plan)
  } finally {
    await closeAll(remotes.values())
  }

  return summarize(cluster, results, performance.now() - t0, selected)
}
