import type {Cluster, Host} from '../inventory/model.js'

import {shq} from '../remote/shell.js'
/**
 * flannel's subnet leases in etcd, in one place: the key format, how to list them through the
 * API the cluster's flannel uses (v2 before flannel 0.18, v3 from 0.18; see flannelEtcdApi), how
 * to delete one, and how a listing is parsed. init (waiting for leases), the network phase
 * (leases under a changed config), doctor and reset all read leases through here.
 */
import {etcdctl, etcdctlV2} from './etcdctl.js'

export interface Lease {
  key: string
  /** The leased subnet, e.g. 10.244.5.0/24. */
  subnet: string
  publicIp?: string
  backendType?: string
  vtepMac?: string
}

/** `<prefix>/subnets`: the directory (v2) or key prefix (v3) that holds one key per lease. */
export function leasePrefix(c: Cluster): string {
  return `${c.flannel.prefix}/subnets`
}

/** flannel's key for a subnet: 10.244.5.0/24 → <prefix>/subnets/10.244.5.0-24. */
export function leaseKey(c: Cluster, subnet: string): string {
  return `${leasePrefix(c)}/${subnet.replace('/', '-')}`
}

const KEY = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/

/**
 * One lease from its key and value (pure); undefined when the key is not a lease key. A value
 * that is not JSON keeps the key (the lease exists even if its data is unreadable).
 */
export function leaseFromKv(key: string, value: string): Lease | undefined {
  const k = key.trim()
  const m = KEY.exec(k)
  if (!m) return undefined
  let v: {PublicIP?: string; BackendType?: string; BackendData?: {VtepMAC?: string}} = {}
  try {
    const parsed = JSON.parse(value) as unknown
    if (parsed && typeof parsed === 'object') v = parsed as typeof v
  } catch {
    /* keep the key even when the value is unreadable */
  }

  return {
    key: k,
    subnet: `${m[1]}/${m[2]}`,
    publicIp: v.PublicIP,
    backendType: v.BackendType,
    vtepMac: v.BackendData?.VtepMAC,
  }
}

/** The leases among a cluster's keys and values (e.g. a v3 read of the whole prefix). */
export function leasesFromKvs(c: Cluster, kvs: {key: string; value: string}[]): Lease[] {
  const dir = `${leasePrefix(c)}/`
  return kvs.filter((kv) => kv.key.startsWith(dir)).flatMap((kv) => leaseFromKv(kv.key, kv.value) ?? [])
}

/** Parses the listing leaseListCommand prints: key and value lines alternating (pure). */
export function parseLeaseListing(stdout: string): Lease[] {
  const lines = stdout.split('\n').filter((l) => l !== '')
  const out: Lease[] = []
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const lease = leaseFromKv(lines[i], lines[i + 1])
    if (lease) out.push(lease)
  }

  return out
}

export interface ListOptions {
  /** Members to ask (default: all). */
  members?: Host[]
  /** Answer from the asked member's own store (v3 --consistency=s, v2 --no-sync): readable without quorum. */
  local?: boolean
  /** Extra etcdctl flags (v3 only), e.g. the doctor's shorter timeouts. */
  v3Flags?: string
}

/**
 * A shell command that prints every lease as a key line and a value line, through the API the
 * cluster's flannel uses. Exit 0 with no output when there are no leases (v2: the directory does
 * not exist yet); non-zero with etcdctl's error when etcd does not answer. A v2 lease that expires
 * between the listing and its read is skipped.
 */
export function leaseListCommand(c: Cluster, opts: ListOptions = {}): string {
  const prefix = leasePrefix(c)
  if (c.flannel.etcdApi === 'v3') {
    const flags = [opts.local ? '--consistency=s' : '', opts.v3Flags ?? ''].filter(Boolean).join(' ')
    return etcdctl(c, `get ${shq(`${prefix}/`)} --prefix${flags ? ` ${flags}` : ''}`, opts.members)
  }

  const sync = opts.local ? '--no-sync ' : ''
  const ls = etcdctlV2(c, `${sync}ls ${shq(prefix)}`, opts.members)
  const get = etcdctlV2(c, `${sync}get "$k"`, opts.members)
  // No `exit`: the doctor runs this inside a subshell that records its status afterwards.
  return [
    `out=$(${ls} 2>&1); rc=$?`,
    `if [ $rc -eq 0 ]; then for k in $out; do v=$(${get} 2>/dev/null) && printf "%s\\n%s\\n" "$k" "$v"; done; true`,
    String.raw`else case "$out" in *"Key not found"*) true ;; *) printf "%s\n" "$out" >&2; (exit $rc) ;; esac; fi`,
  ].join('\n')
}

/** The shell command that deletes one lease key. */
export function leaseDeleteCommand(c: Cluster, key: string): string {
  return c.flannel.etcdApi === 'v2' ? etcdctlV2(c, `rm ${shq(key)}`) : etcdctl(c, `del ${shq(key)}`)
}

/** Something that runs a command on an etcd member and throws on a non-zero exit. */
export interface CommandRunner {
  run(cmd: string, opts?: {timeoutMs?: number}): Promise<{stdout: string}>
}

/** Every lease, read through `via` (an etcd member with etcdctl and kflan's client certificate). */
export async function readLeases(c: Cluster, via: CommandRunner, opts: ListOptions = {}): Promise<Lease[]> {
  const r = await via.run(`sh -c ${shq(leaseListCommand(c, opts))}`)
  return parseLeaseListing(r.stdout)
}
