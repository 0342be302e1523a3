/**
 * etcdctl command lines run on an etcd member over SSH, with the member's own server certificate
 * (client auth; its CN, the member name, is an etcd user with the root role: src/cluster/etcd-auth.ts).
 * Paths and endpoints are shell-quoted; `args` is shell text the caller built (quoting its own values).
 */
import {clientUrl, type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {shq} from '../remote/shell.js'
import {etcdPaths} from '../render/paths.js'

/** etcdctl's time bounds: connecting (`--dial-timeout`) and the whole request (`--command-timeout`). */
export interface EtcdBounds {
  dialMs: number
  commandMs: number
}

/** One request of kflan's: `ms` in all (`timeouts.etcdRequest`, 5s by default), connecting within 2/5 of it. */
export const requestBounds = (ms: number): EtcdBounds => ({dialMs: Math.round((ms * 2) / 5), commandMs: ms})

/** A duration as etcdctl reads it (Go's time.ParseDuration). */
const goDuration = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.max(1, Math.round(ms))}ms`)

/** etcdctl (v3 API) against the given members (default: all), e.g. etcdctl(c, 'endpoint health'). */
export function etcdctl(
  c: Cluster,
  args: string,
  members: Host[] = etcdMembers(c),
  bounds: EtcdBounds = requestBounds(c.timeouts.etcdRequest),
): string {
  const p = etcdPaths(c)
  return [
    'ETCDCTL_API=3',
    shq(`${p.bin}/etcdctl`),
    shq(`--cacert=${p.ca}`),
    shq(`--cert=${p.serverCert}`),
    shq(`--key=${p.serverKey}`),
    shq(`--endpoints=${members.map((m) => clientUrl(c, m)).join(',')}`),
    `--dial-timeout=${goDuration(bounds.dialMs)}`,
    `--command-timeout=${goDuration(bounds.commandMs)}`,
    args,
  ].join(' ')
}

/** etcdctl through the v2 API (flannel < 0.18 reads its config there). */
export function etcdctlV2(
  c: Cluster,
  args: string,
  members: Host[] = etcdMembers(c),
  bounds: EtcdBounds = requestBounds(c.timeouts.etcdRequest),
): string {
  const p = etcdPaths(c)
  return [
    'ETCDCTL_API=2',
    shq(`${p.bin}/etcdctl`),
    shq(`--ca-file=${p.ca}`),
    shq(`--cert-file=${p.serverCert}`),
    shq(`--key-file=${p.serverKey}`),
    shq(`--endpoints=${members.map((m) => clientUrl(c, m)).join(',')}`),
    `--timeout=${goDuration(bounds.dialMs)}`,
    `--total-timeout=${goDuration(bounds.commandMs)}`,
    args,
  ].join(' ')
}

export interface EndpointHealth {
  endpoint: string
  health: boolean
  error?: string
}

/** Parses `etcdctl endpoint health -w json` (one JSON array; etcd 3.4+). */
export function parseEndpointHealth(stdout: string): EndpointHealth[] {
  const start = stdout.indexOf('[')
  if (start === -1) return []
  try {
    const arr = JSON.parse(stdout.slice(start)) as {endpoint: string; health: boolean; error?: string}[]
    return arr.map((e) => ({endpoint: e.endpoint, health: e.health === true, error: e.error}))
  } catch {
    return []
  }
}

/** etcd's quorum: a majority of the members. */
export const quorum = (n: number): number => Math.floor(n / 2) + 1

/** JSON.parse of etcdctl's `-w json` output with etcd's 64-bit IDs kept exact (as decimal strings). */
export function parseEtcdJson<T>(text: string): T | undefined {
  const start = text.search(/[[{]/)
  if (start < 0) return undefined
  const quoted = text
    .slice(start)
    .replaceAll(/("(?:ID|id|member_id|leader|cluster_id|memberID)"\s*:\s*)(\d+)/g, '$1"$2"')
  try {
    return JSON.parse(quoted) as T
  } catch {
    return undefined
  }
}

/** A member ID as etcdctl's tables print it and `member remove` takes it (hex), from the JSON's decimal. */
export const memberIdHex = (decimal: string): string => BigInt(decimal).toString(16)

export interface EtcdMember {
  /** Hex member ID, as etcdctl prints and `member remove` takes it. */
  id: string
  /** Empty for a member added but never started. */
  name: string
  peerUrls: string[]
  clientUrls: string[]
  learner: boolean
}

/** The `member list` every command runs (JSON: exact IDs, no table to split). */
export const MEMBER_LIST = 'member list -w json'

/**
 * Parses `etcdctl member list -w json` (pure); undefined when the output is not that JSON.
 * A member added but never started has no name and no client URLs.
 */
export function parseMemberList(stdout: string): EtcdMember[] | undefined {
  const parsed = parseEtcdJson<{
    members?: {ID: string; name?: string; peerURLs?: string[]; clientURLs?: string[]; isLearner?: boolean}[]
  }>(stdout)
  if (!parsed || typeof parsed !== 'object' || !('header' in parsed || 'members' in parsed)) return undefined
  return (parsed.members ?? []).map((m) => ({
    id: memberIdHex(m.ID),
    name: m.name ?? '',
    peerUrls: m.peerURLs ?? [],
    clientUrls: m.clientURLs ?? [],
    learner: m.isLearner === true,
  }))
}

/**
 * The ETCD_INITIAL_CLUSTER that `etcdctl member add` prints for the new member (pure), e.g.
 * `lab-m1=https://10.0.0.11:2380,lab-m2=https://10.0.0.12:2380`; undefined when absent.
 */
export function parseInitialCluster(stdout: string): string | undefined {
  const m = /^ETCD_INITIAL_CLUSTER="([^"\n]*)"/m.exec(stdout)
  return m && m[1] !== '' ? m[1] : undefined
}
