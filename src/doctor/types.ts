import type {Clock} from '../host/clock.js'
import type {EtcdProcess} from '../host/etcd.js'
import type {FileContents} from '../host/files.js'
import type {Firewalld} from '../host/firewalld.js'
import type {HttpProbe} from '../host/http.js'
import type {IptablesTable} from '../host/iptables.js'
import type {BrNetfilter, Selinux, Swap, Sysctl} from '../host/kernel.js'
import type {Interface, Route, VxlanLink} from '../host/net.js'
import type {RunOut} from '../host/probe.js'
import type {UnitState} from '../host/units.js'
/**
 * The doctor's data model: what is gathered from each host (parsed, no I/O here), and what every
 * check returns. The evaluation modules (host, etcd, certs, network, flannel, docker, dataplane)
 * are pure functions from a DoctorInput to CheckResults.
 */
import type {Cluster, Host} from '../inventory/model.js'

export type Status = 'ok' | 'warn' | 'fail'

export interface CheckResult {
  /** Stable id: `group.name`, e.g. `etcd.health`, `host.ip-forward`. */
  id: string
  scope: 'cluster' | 'host'
  /** The host, for host-scoped results. */
  host?: string
  status: Status
  /** What was seen. */
  message: string
  /** What to do about it (warn and fail). */
  hint?: string
}

export interface DoctorReport {
  cluster: string
  /** False when any result failed (warnings are allowed). */
  ok: boolean
  /** The hosts the run was limited to (`--host`), if any. */
  limitedTo?: string[]
  summary: {ok: number; warn: number; fail: number}
  /** Wall time of the run, ms. */
  durationMs: number
  results: CheckResult[]
}

/** One HTTP GET from the host (src/host/http.ts). */
export type {HttpProbe} from '../host/http.js'
export type {RunOut} from '../host/probe.js'

/**
 * Everything the checks script read on one host (parsed): the host facts are src/host's types,
 * read by the same probes init and reset use.
 */
export interface HostData {
  /** This host's clock against the local one. */
  clock?: Clock
  swap: Swap
  selinux: Selinux
  /** `ports`: which of the ports this host needs the default zone opens. */
  firewalld: Firewalld & {ports: {port: string; open: boolean}[]}
  sysctl: Sysctl
  brNetfilter: BrNetfilter
  /** `iptables -S` of the filter table; undefined when iptables is missing. */
  iptables: IptablesTable
  /** The units systemd knows about (undefined: not in systemctl's answer). */
  units: {etcd?: UnitState; flanneld?: UnitState; docker?: UnitState}
  /** Etcd members only: the member's own view (its endpoint), plus members it checked for others. */
  etcd?: EtcdView
  /** Files read from the host by absolute path; undefined when missing. Keys included (never printed). */
  files: FileContents
  interfaces: Interface[]
  routes: Route[]
  vxlan?: VxlanLink
  /** docker's main process command line. */
  dockerCmdline?: string
  /** flanneld's /healthz and (0.28.9+) /readyz on loopback, when --healthz-port is on. */
  health?: {healthz?: HttpProbe; readyz?: HttpProbe}
  /** The last ExecStart= of docker.service's own unit file (its FragmentPath), without kflan's drop-in. */
  dockerVendorExecStart?: string
  /** Tools missing on the host that a check needed. */
  missingTools: string[]
}

export interface EtcdView {
  /** --quota-backend-bytes of the running member (undefined: etcd's default). */
  quotaBytes?: number
  /** The running member's argv and ETCD_* environment (undefined: not running, or not readable). */
  process?: EtcdProcess
  /** endpoint health / status (-w json) per member name, each asked on its own endpoint from this host. */
  endpoints: Record<string, {health: RunOut; status: RunOut}>
  /** Cluster reads, on the one member that was asked for them (against every endpoint). */
  reads?: ClusterReads
}

export interface ClusterReads {
  memberList: RunOut
  alarms: RunOut
  /** v3 `get <prefix>/ --prefix -w json` (serializable): the network config and the leases. */
  keysV3: RunOut
  /** v2 `get <prefix>/config`, on each member's endpoint (v2 is served only by members started with --enable-v2). */
  configV2: {member: string; run: RunOut}[]
  /** v2 lease listing (key line, value line), only when flannel reads v2. */
  leasesV2?: RunOut
}

export type ConnectProblem = 'unreachable' | 'hostkey' | 'auth' | 'error'

export interface HostState {
  host: Host
  /** SSH worked (host key verified, logged in). */
  connected: boolean
  error?: {kind: ConnectProblem; message: string; hint?: string}
  hostKey?: {fingerprint: string; keyType: string; action: string}
  data?: HostData
  /** Connected, but the checks script failed. */
  gatherError?: string
}

export interface PingResult {
  /** Target host name. */
  target: string
  address: string
  ok: boolean
  rttMs?: number
  detail?: string
}

export interface DoctorInput {
  cluster: Cluster
  /** Every host the run looked at, in inventory order. */
  hosts: HostState[]
  /** The state dir's CA (PEM), when there is one. */
  localCaPem?: string
  /** Pings by source host name. */
  pings: Map<string, PingResult[]>
  now: Date
  /** Limit host checks to these hosts (`--host`). */
  selected?: Set<string>
}

/** Builds results for one check id. */
export function resultFor(id: string, host?: string) {
  const scope: CheckResult['scope'] = host === undefined ? 'cluster' : 'host'
  const make = (status: Status, message: string, hint?: string): CheckResult => ({
    id,
    scope,
    ...(host === undefined ? {} : {host}),
    status,
    message,
    ...(hint && status !== 'ok' ? {hint} : {}),
  })
  return {
    ok: (message: string) => make('ok', message),
    warn: (message: string, hint?: string) => make('warn', message, hint),
    fail: (message: string, hint?: string) => make('fail', message, hint),
    status: make,
  }
}

/** Hosts with data (connected and gathered). */
export function withData(input: DoctorInput): (HostState & {data: HostData})[] {
  return input.hosts.filter((h): h is HostState & {data: HostData} => h.data !== undefined)
}

/** The cluster reads and the member they came from (the first host that has them). */
export function readsOf(input: DoctorInput): {reads: ClusterReads; from: string} | undefined {
  const s = withData(input).find((x) => x.data.etcd?.reads)
  return s ? {reads: s.data.etcd!.reads!, from: s.host.name} : undefined
}

export function stateOf(input: DoctorInput, name: string): HostState | undefined {
  return input.hosts.find((h) => h.host.name === name)
}

/** "a, b and c" */
export function listing(items: string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`
}

export function plural(n: number, word: string, pluralWord = `${word}s`): string {
  return `${n} ${n === 1 ? word : pluralWord}`
}
