import {blockingInputRules} from '../cluster/iptables.js'
/**
 * The data plane (pure parts): which pings to send, and what they mean. From every flannel host,
 * one ping from its docker0 address to every other flannel host's docker0 address, across the
 * overlay. A host whose docker0 is not on its flannel subnet takes no part (docker.bridge says
 * why); a host that could not be reached is left out (ssh.reachable says why).
 */
import {docker0Of} from '../host/net.js'
import {flannelHosts} from '../inventory/model.js'
import {subnetEnvOf} from './flannel.js'
import {type CheckResult, type DoctorInput, listing, resultFor, stateOf} from './types.js'

export interface PingEndpoint {
  name: string
  /** docker0's address. */
  address: string
}

export interface PingPlan {
  /** Pings to send, by source. */
  pairs: {source: PingEndpoint; targets: PingEndpoint[]}[]
  /** Flannel hosts left out, with why. */
  skipped: {name: string; why: string}[]
}

/** Who pings whom (pure). With `selected`, only pairs with a selected host at one end. */
export function pingPlan(input: DoctorInput): PingPlan {
  const c = input.cluster
  const ends: PingEndpoint[] = []
  const skipped: PingPlan['skipped'] = []
  for (const h of flannelHosts(c)) {
    const s = stateOf(input, h.name)
    if (!s?.data) {
      skipped.push({name: h.name, why: s?.connected === false ? 'not reachable over SSH' : 'not checked'})
      continue
    }

    const env = subnetEnvOf(c, s.data)
    const b = docker0Of(s.data.interfaces)
    const gw = env?.subnet?.split('/')[0]
    if (!gw) skipped.push({name: h.name, why: 'no flannel subnet file'})
    else if (!b?.address) skipped.push({name: h.name, why: 'no docker0 address'})
    else if (b.address === gw) {
      ends.push({name: h.name, address: b.address})
    } else {
      skipped.push({name: h.name, why: `docker0 is ${b.address}, not on its flannel subnet ${env!.subnet}`})
    }
  }

  const sel = input.selected
  const pairs = ends
    .map((source) => ({
      source,
      targets: ends.filter((t) => t.name !== source.name && (!sel || sel.has(source.name) || sel.has(t.name))),
    }))
    .filter((p) => p.targets.length > 0)
  return {pairs, skipped}
}

export function dataplaneChecks(input: DoctorInput, plan: PingPlan = pingPlan(input)): CheckResult[] {
  const c = input.cluster
  const out: CheckResult[] = []
  const port = c.flannel.backend.type === 'host-gw' ? undefined : `${c.flannel.backend.port}/udp`
  const failedPairs: [string, string][] = []
  for (const {source} of plan.pairs)
    for (const p of input.pings.get(source.name) ?? []) if (!p.ok) failedPairs.push([source.name, p.target])
  // When every failed ping involves the same host, that host is the likely culprit.
  const suspects =
    failedPairs.length === 0
      ? []
      : flannelHosts(c)
          .map((h) => h.name)
          .filter((n) => failedPairs.every(([a, b]) => a === n || b === n))
  // A host whose iptables drop the backend port is the culprit whatever the pairs say.
  const dropping = port
    ? [...new Set(failedPairs.flat())].filter((n) => {
        const d = stateOf(input, n)?.data
        return d?.iptables && !d.iptables.error && blockingInputRules(d.iptables.rules, [port]).length > 0
      })
    : []
  const suspect = dropping.length === 1 ? dropping[0] : suspects.length === 1 ? suspects[0] : undefined
  const suspectWhy =
    dropping.length === 1
      ? `${dropping[0]}'s iptables drop UDP ${port!.split('/')[0]} (see host.iptables-input)`
      : undefined
  const skippedNote =
    plan.skipped.length > 0 ? `; not pinged: ${plan.skipped.map((s) => `${s.name} (${s.why})`).join(', ')}` : ''

  for (const {source} of plan.pairs) {
    const r = resultFor('dataplane.ping', source.name)
    const results = input.pings.get(source.name)
    if (!results) {
      out.push(r.fail(`the pings from ${source.address} did not run`, 'see ssh.reachable'))
      continue
    }

    const bad = results.filter((p) => !p.ok)
    const shown = (p: (typeof results)[number]) =>
      `${p.target} ${p.address}${p.ok ? (p.rttMs === undefined ? '' : ` ${p.rttMs} ms`) : ` (${p.detail ?? 'failed'})`}`
    if (bad.length === 0) {
      out.push(r.ok(`from docker0 ${source.address} to ${results.map(shown).join(', ')}${skippedNote}`))
      continue
    }

    const hint = suspectWhy
      ? `${suspectWhy}: delete that rule`
      : suspect
        ? `every failed ping involves ${suspect}: check that ${port ? `UDP ${port.split('/')[0]} (the ${c.flannel.backend.type} port) reaches it (firewalld, iptables INPUT rules, cloud security groups)` : 'its routes'} and its flannel device and routes (flannel.vxlan, flannel.routes, host.iptables-input)`
        : `check that ${port ? `UDP ${port.split('/')[0]}` : 'traffic'} flows between ${listing([source.name, ...bad.map((p) => p.target)])} (firewalls, iptables INPUT rules), and flannel.routes / flannel.vxlan on both ends`
    out.push(
      r.fail(
        `from docker0 ${source.address}: no reply from ${bad.map(shown).join(', ')}${
          bad.length < results.length
            ? `; ok: ${results
                .filter((p) => p.ok)
                .map(shown)
                .join(', ')}`
            : ''
        }${skippedNote}`,
        hint,
      ),
    )
  }

  return out
}
