/**
 * etcdctl command lines run on an etcd member over SSH, with the member's own server certificate
 * (client auth; its CN, the member name, is an etcd user with the root role: src/cluster/etcd-auth.ts).
 * Paths and endpoints are shell-quoted; `args` is shell text the caller built (quoting its own values).
 */
import {clientUrl, type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {shq} from '../remote/shell.js'
import {etcdPaths} from '../render/paths.js'

/** etcdctl (v3 API) against the given members (default: all), e.g. etcdctl(c, 'endpoint health'). */
export function etcdctl(c: Cluster, args: string, members: Host[] = etcdMembers(c)): string {
  const p = etcdPaths(c)
  return [
    'ETCDCTL_API=3',
    shq(`${p.bin}/etcdctl`),
    shq(`--cacert=${p.ca}`),
    shq(`--cert=${p.serverCert}`),
    shq(`--key=${p.serverKey}`),
    shq(`--endpoints=${members.map((m) => clientUrl(c, m)).join(',')}`),
    '--dial-timeout=2s',
    '--command-timeout=5s',
    args,
  ].join(' ')
}

/** etcdctl through the v2 API (flannel < 0.18 reads its config there). */
export function etcdctlV2(c: Cluster, args: string, members: Host[] = etcdMembers(c)): string {
  const p = etcdPaths(c)
  return [
    'ETCDCTL_API=2',
    shq(`${p.bin}/etcdctl`),
    shq(`--ca-file=${p.ca}`),
    shq(`--cert-file=${p.serverCert}`),
    shq(`--key-file=${p.serverKey}`),
    shq(`--endpoints=${members.map((m) => clientUrl(c, m)).join(',')}`),
    '--timeout=2s',
    '--total-timeout=5s',
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

export interface EtcdMember {
  /** Hex member ID, as etcdctl prints and `member remove` takes it. */
  id: string
  status: string
  name: string
  peerUrls: string[]
  clientUrls: string[]
}

/** Parses `etcdctl member list -w simple` (pure): `ID, status, name, peers, clients, learner`. */
export function parseMemberList(stdout: string): EtcdMember[] {
  const out: EtcdMember[] = []
  for (const line of stdout.split('\n')) {
    const f = line.split(',').map((x) => x.trim())
    if (f.length < 5 || !/^[0-9a-f]+$/.test(f[0])) continue
    const urls = (s: string) => s.split(/\s+/).filter(Boolean)
    out.push({id: f[0], status: f[1], name: f[2], peerUrls: urls(f[3]), clientUrls: urls(f[4])})
  }

  return out
}

/**
 * The ETCD_INITIAL_CLUSTER that `etcdctl member add` prints for the new member (pure), e.g.
 * `lab-m1=https://10.0.0.11:2380,lab-m2=https://10.0.0.12:2380`; undefined when absent.
 */
export function parseInitialCluster(stdout: string): string | undefined {
  const m = /^ETCD_INITIAL_CLUSTER="([^"\n]*)"/m.exec(stdout)
  return m && m[1] !== '' ? m[1] : undefined
}
