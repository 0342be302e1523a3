import type {Cluster} from '../inventory/model.js'

/**
 * flannel's network config (pure): present under <prefix>/config, parseable, equal to what the
 * inventory renders, and stored through the etcd API the installed flannel reads (v2 before 0.18,
 * v3 from 0.18). A config that exists only through the other API is named as such.
 */
import {etcdctl, etcdctlV2} from '../cluster/etcdctl.js'
import {incompatibleChanges, type NetworkConfig, parseNetworkConfig, sameConfig} from '../cluster/netconfig.js'
import {shq} from '../remote/shell.js'
import {networkConfig} from '../render/index.js'
import {etcdctlError, parseGetJson} from './etcd-output.js'
import {type CheckResult, type DoctorInput, readsOf, resultFor, type RunOut} from './types.js'

export type Stored =
  | {state: 'present'; value: string; from: string}
  | {state: 'absent'}
  | {state: 'disabled'}
  | {state: 'unknown'; error: string}

/** The v3 prefix read (`get <prefix>/ --prefix -w json`) → the config key. */
export function readV3(run: RunOut, key: string, from: string): Stored {
  if (run.rc !== 0) return {state: 'unknown', error: `${from}: ${etcdctlError(run)}`}
  const kvs = parseGetJson(run.stdout)
  if (!kvs) return {state: 'unknown', error: `${from}: cannot parse etcdctl's answer`}
  const kv = kvs.find((x) => x.key === key)
  return kv ? {state: 'present', value: kv.value.trim(), from} : {state: 'absent'}
}

/** v2 `get`: "Key not found" = absent; a server without --enable-v2 answers 404 / not JSON = disabled. */
export function readV2(runs: {run: RunOut; from: string}[]): Stored {
  let absent = false
  let disabled = false
  const errors: string[] = []
  for (const {run, from} of runs) {
    const text = `${run.stdout}\n${run.stderr}`
    if (run.rc === 0 && run.stdout.trim() !== '') return {state: 'present', value: run.stdout.trim(), from}
    if (/Key not found|\b100:/i.test(text)) absent = true
    else if (
      /response is invalid json|not valid etcd cluster endpoint|404 page not found|unexpected status code 404/i.test(
        text,
      )
    )
      disabled = true
    else errors.push(`${from}: ${etcdctlError(run)}`)
  }

  if (absent) return {state: 'absent'}
  if (disabled) return {state: 'disabled'}
  return {state: 'unknown', error: errors.join('; ') || 'no etcd member could be asked'}
}

export function writeCommand(c: Cluster, api: 'v2' | 'v3', short: boolean): string {
  const key = `${c.flannel.prefix}/config`
  const value = shq(networkConfig(c))
  if (short)
    return api === 'v3' ? `ETCDCTL_API=3 etcdctl put ${key} ${value}` : `ETCDCTL_API=2 etcdctl set ${key} ${value}`
  return api === 'v3' ? etcdctl(c, `put ${shq(key)} ${value}`) : etcdctlV2(c, `set ${shq(key)} ${value}`)
}

function differences(current: NetworkConfig, desired: NetworkConfig): string[] {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(desired)])]
  return keys
    .filter((k) => JSON.stringify(current[k]) !== JSON.stringify(desired[k]))
    .map((k) => `${k} ${JSON.stringify(current[k]) ?? '(unset)'} → ${JSON.stringify(desired[k]) ?? '(unset)'}`)
}

export function networkChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const reads = readsOf(input)
  if (!reads) return []
  const r = resultFor('network.config')
  const key = `${c.flannel.prefix}/config`
  const api = c.flannel.etcdApi
  const other = api === 'v3' ? 'v2' : 'v3'
  const v3 = readV3(reads.reads.keysV3, key, reads.from)
  const v2 = readV2(reads.reads.configV2.map((x) => ({run: x.run, from: x.member})))
  const mine = api === 'v3' ? v3 : v2
  const theirs = api === 'v3' ? v2 : v3
  const flannelReads = `flannel ${c.flannel.version} reads ${api}`

  if (mine.state === 'unknown')
    return [
      r.fail(
        `cannot read ${key} through the ${api} API: ${mine.error}`,
        'see etcd.health; the config can only be checked through a working member',
      ),
    ]
  if (mine.state === 'disabled') {
    return [
      r.fail(
        `${flannelReads}, but etcd does not serve the v2 API (started without --enable-v2)${theirs.state === 'present' ? `; ${key} exists only through v3` : ''}`,
        `start etcd with --enable-v2 (kflan's unit has it when the inventory's flannel version is < 0.18; run \`kflan init\`), then write the config: ${writeCommand(c, 'v2', true)}`,
      ),
    ]
  }

  if (mine.state === 'absent') {
    if (theirs.state === 'present') {
      return [
        r.fail(
          `${key} is missing in the ${api} API but present in ${other}: written through the ${other} API, but ${flannelReads}: write it with ${writeCommand(c, api, true)}`,
          `on an etcd member: ${writeCommand(c, api, false)} (or run \`kflan init\`), then restart flanneld on the nodes that are waiting for it`,
        ),
      ]
    }

    return [
      r.fail(
        `${key} is missing (${api} API${theirs.state === 'absent' ? `; not in ${other} either` : ''}): flanneld cannot start or restart ("Couldn't fetch network config")`,
        `run \`kflan init\`, or on an etcd member: ${writeCommand(c, api, false)}`,
      ),
    ]
  }

  const current = parseNetworkConfig(mine.value)
  if (!current)
    return [
      r.fail(
        `${key} is not a JSON object: ${mine.value.slice(0, 120)}`,
        `rewrite it: ${writeCommand(c, api, true)} (or run \`kflan init --force\`)`,
      ),
    ]
  const desired = parseNetworkConfig(networkConfig(c))!
  if (sameConfig(current, desired)) return [r.ok(`${key} (${api} API) equals the inventory's: ${mine.value}`)]
  const incompatible = incompatibleChanges(current, desired)
  if (incompatible.length > 0) {
    return [
      r.fail(
        `${key} differs from the inventory where flannel cannot follow at runtime: ${incompatible.join('; ')}`,
        'either set the inventory back to what the cluster runs, or rewrite the config (`kflan init --force`) and restart flanneld and docker on every node',
      ),
    ]
  }

  return [
    r.warn(
      `${key} differs from the inventory: ${differences(current, desired).join('; ')}`,
      "run `kflan init` to write the inventory's config (existing leases keep working)",
    ),
  ]
}
