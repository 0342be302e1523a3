/**
 * Gathering: per host, ONE script prints every section the checks need (slow probes such as
 * etcdctl and firewall-cmd run in the background inside it), plus two tiny commands on parallel
 * channels of the same connection: the private keys (never logged, never printed) and the clock.
 * Script building and parsing are pure; only the functions at the bottom do I/O.
 */
import {performance} from 'node:perf_hooks'

import type {Remote} from '../remote/ssh.js'
import type {ClusterReads, EtcdView, HostData, PingResult, Route, RunOut, UnitStatus, VxlanLink} from './types.js'

import {etcdctl, etcdctlV2} from '../cluster/etcdctl.js'
import {healthUrls, hostPorts as neededPorts, vxlanDevice} from '../cluster/flannel.js'
import {leaseListCommand} from '../cluster/leases.js'
import {type Cluster, etcdMembers, type Host} from '../inventory/model.js'
import {computeSkew, parseExecStart, parseIpAddr, parseSystemctlShow, splitSections} from '../remote/facts.js'
import {shq} from '../remote/shell.js'
import {renderHost} from '../render/index.js'
import {etcdPaths, flannelPaths} from '../render/paths.js'

/** etcdctl bounds for the doctor: a dead member must not hold the run for long. */
const ETCD_TIMEOUTS = '--dial-timeout=1s --command-timeout=2s'

/**
 * The files kflan renders and owns on a host, certificates aside (unit files, drop-in, etcd's
 * environment files, sysctl and modules files): doctor compares each with what kflan renders.
 */
export function ownedFiles(c: Cluster, h: Host): string[] {
  const rendered = renderHost(c, h, {pki: () => ''})
    .filter((f) => !f.secret && !f.path.endsWith('.pem'))
    .map((f) => f.path)
  return h.roles.etcd ? [...rendered, etcdPaths(c).join] : rendered
}

/** The files the checks read on a host: kflan's own files, certificates, the subnet file. */
export function hostFiles(c: Cluster, h: Host): {public: string[]; keys: string[]} {
  const pub: string[] = []
  const keys: string[] = []
  if (h.roles.etcd) {
    const {ssl} = etcdPaths(c)
    pub.push(`${ssl}/ca.pem`, `${ssl}/server.pem`, `${ssl}/peer.pem`)
    keys.push(`${ssl}/server-key.pem`, `${ssl}/peer-key.pem`)
  }

  if (h.roles.flannel) {
    const {ssl} = flannelPaths(c)
    pub.push(`${ssl}/ca.pem`, `${ssl}/flanneld.pem`, c.flannel.subnetFile)
    keys.push(`${ssl}/flanneld-key.pem`)
  }

  pub.push(...ownedFiles(c, h))
  return {public: [...new Set(pub)], keys}
}

/** endpoint health and status of `members`, each asked on its own endpoint (a dead one cannot delay another). */
function endpointJobs(c: Cluster, members: Host[]): [string, string][] {
  const all = etcdMembers(c)
  return members.flatMap((m): [string, string][] => {
    const i = all.findIndex((x) => x.name === m.name)
    return [
      [`eh-${i}`, etcdctl(c, `endpoint health -w json ${ETCD_TIMEOUTS}`, [m])],
      [`es-${i}`, etcdctl(c, `endpoint status -w json ${ETCD_TIMEOUTS}`, [m])],
    ]
  })
}

/**
 * The cluster reads, asked of every endpoint (etcdctl fails over when one is down); serializable
 * reads answer from a member's own store, so config and leases stay readable without quorum.
 */
function readJobs(c: Cluster): [string, string][] {
  const p = c.flannel.prefix
  const jobs: [string, string][] = [
    ['members', etcdctl(c, `member list -w json ${ETCD_TIMEOUTS}`)],
    ['alarms', etcdctl(c, `alarm list ${ETCD_TIMEOUTS}`)],
    ['keys3', etcdctl(c, `get ${shq(`${p}/`)} --prefix -w json --consistency=s ${ETCD_TIMEOUTS}`)],
    ...etcdMembers(c).map((m, i): [string, string] => [
      `cfg2-${i}`,
      etcdctlV2(c, `--no-sync get ${shq(`${p}/config`)}`, [m]),
    ]),
  ]
  if (c.flannel.etcdApi === 'v2') jobs.push(['leases2', leaseListCommand(c, {local: true})])
  return jobs
}

const PRELUDE = [
  'LC_ALL=C; export LC_ALL',
  `s() { printf '\\n@@kflan:%s@@\\n' "$1"; }`,
  'has() { command -v "$1" >/dev/null 2>&1; }',
  'T=$(mktemp -d /tmp/kflan-doctor.XXXXXX) || exit 97',
  `trap 'rm -rf "$T"' EXIT`,
  // j NAME CMD: CMD in the background; stdout, stderr and exit code become sections NAME, NAME--err, NAME--rc.
  `j() { ( eval "$2" >"$T/$1.o" 2>"$T/$1.e"; echo $? >"$T/$1.r" ) & }`,
]

function jobLines(jobs: [string, string][]): {start: string[]; collect: string[]} {
  return {
    start: jobs.map(([n, cmd]) => `j ${n} ${shq(cmd)}`),
    collect:
      jobs.length === 0
        ? []
        : [
            'wait',
            `for n in ${jobs.map(([n]) => n).join(' ')}; do s "$n"; cat "$T/$n.o"; s "$n--err"; cat "$T/$n.e"; s "$n--rc"; cat "$T/$n.r" 2>/dev/null; done`,
          ],
  }
}

/** The checks script for one host (pure). `reads`: this member also does the cluster reads. */
export function doctorScript(c: Cluster, h: Host, opts: {reads?: boolean} = {}): string {
  const jobs: [string, string][] = []
  if (h.roles.etcd) jobs.push(...endpointJobs(c, [h]))
  if (opts.reads) jobs.push(...readJobs(c))
  jobs.push(
    ['iptables', 'if has iptables; then iptables -w 5 -S; else echo "#missing"; fi'],
    [
      'firewalld',
      'if [ "$(unit firewalld.service ActiveState)" = active ]; then echo "state=active"; firewall-cmd --list-all; echo "@trusted-sources=$(firewall-cmd --zone=trusted --list-sources 2>/dev/null)"; else echo "state=$(unit firewalld.service ActiveState)"; fi',
    ],
  )
  const {start, collect} = jobLines(jobs)
  const files = hostFiles(c, h).public
  const dev = vxlanDevice(c)
  const lines = [
    ...PRELUDE,
    // One systemctl call for every unit (each call is a D-Bus round trip to PID 1).
    'systemctl show etcd.service flanneld.service docker.service firewalld.service -p Id -p LoadState -p ActiveState -p SubState -p MainPID -p ExecStart -p DropInPaths -p FragmentPath >"$T/units" 2>/dev/null',
    // unit NAME PROPERTY: a property of one unit from that output.
    `unit() { awk -v id="$1" -v p="$2=" 'BEGIN { RS = "" } index("\\n" $0 "\\n", "\\nId=" id "\\n") { n = split($0, l, "\\n"); for (i = 1; i <= n; i++) if (index(l[i], p) == 1) print substr(l[i], length(p) + 1) }' "$T/units"; }`,
    ...start,
    's swaps; cat /proc/swaps 2>/dev/null',
    's selinux; if has getenforce; then echo "getenforce=$(getenforce 2>/dev/null)"; elif [ -r /sys/fs/selinux/enforce ]; then echo "enforce=$(cat /sys/fs/selinux/enforce)"; fi',
    's sysctl; for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do if [ -r /proc/sys/$k ]; then echo "$k=$(cat /proc/sys/$k)"; fi; done; if [ -d /proc/sys/net/bridge ]; then echo bridge-dir=1; fi',
    's units; cat "$T/units"',
  ]
  if (h.roles.etcd) {
    lines.push(
      // The running etcd's command line and its ETCD_* environment (what it really listens on and
      // authenticates with, whatever the files say now).
      String.raw`s etcd-proc; pid=$(unit etcd.service MainPID); if [ -n "$pid" ] && [ "$pid" != 0 ]; then tr "\0" "\n" </proc/$pid/cmdline 2>/dev/null | sed "s/^/arg /"; tr "\0" "\n" </proc/$pid/environ 2>/dev/null | grep "^ETCD_" | sed "s/^/env /"; fi`,
    )
  }

  for (const [i, f] of files.entries())
    lines.push(`s file-${i}; if [ -r ${shq(f)} ]; then echo present; cat ${shq(f)}; else echo absent; fi`)

  if (h.roles.flannel) {
    lines.push(
      's addrs; ip -j addr 2>/dev/null || { echo "#text"; ip -o addr 2>/dev/null; }',
      's routes; ip -j -4 route show 2>/dev/null || { echo "#text"; ip -4 route show 2>/dev/null; }',
    )
    if (dev) lines.push(`s vxlan; ip -j -d link show dev ${shq(dev)} 2>/dev/null`)
    const hz = healthUrls(c)
    for (const [name, url] of Object.entries(hz)) {
      if (url)
        lines.push(
          `s http-${name}; if has curl; then curl -sS -m 2 -w '\\n@code=%{http_code}' ${shq(url)} 2>&1; else echo "#no-curl"; fi`,
        )
    }

    if (c.docker.enabled) {
      lines.push(
        String.raw`s dockerd; pid=$(unit docker.service MainPID); if [ -n "$pid" ] && [ "$pid" != 0 ]; then tr "\0" " " </proc/$pid/cmdline 2>/dev/null; fi`,
        's docker-vendor; f=$(unit docker.service FragmentPath); if [ -n "$f" ] && [ -r "$f" ]; then grep -E "^ExecStart=" "$f"; fi',
      )
    }
  }

  lines.push(...collect, 's end', '')
  return lines.join('\n')
}

/** Prints the private keys (run with logOutput: false; the output never leaves memory). */
export function keysScript(paths: string[]): string {
  return [
    `s() { printf '\\n@@kflan:%s@@\\n' "$1"; }`,
    ...paths.map((p, i) => `s key-${i}; if [ -r ${shq(p)} ]; then echo present; cat ${shq(p)}; else echo absent; fi`),
    's end',
    '',
  ].join('\n')
}

/**
 * Second round, only when needed: health and status of members nobody could log in to, and the
 * cluster reads when the member meant to do them could not.
 */
export function followUpScript(c: Cluster, opts: {members: Host[]; reads: boolean}): string {
  const {start, collect} = jobLines([...endpointJobs(c, opts.members), ...(opts.reads ? readJobs(c) : [])])
  return [...PRELUDE, ...start, ...collect, 's end', ''].join('\n')
}

function kv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim()
  }

  return out
}

function fileSection(body: string | undefined): string | undefined {
  if (body === undefined) return undefined
  const nl = body.indexOf('\n')
  const head = nl === -1 ? body : body.slice(0, nl)
  if (head.trim() !== 'present') return undefined
  return nl === -1 ? '' : body.slice(nl + 1)
}

function runOut(sec: Map<string, string>, name: string): RunOut {
  if (!sec.has(name)) return {stdout: '', stderr: '', rc: null}
  const rc = (sec.get(`${name}--rc`) ?? '').trim()
  return {stdout: sec.get(name) ?? '', stderr: sec.get(`${name}--err`) ?? '', rc: /^\d+$/.test(rc) ? Number(rc) : null}
}

function parseUnits(text: string): HostData['units'] {
  const out: HostData['units'] = {}
  for (const r of parseSystemctlShow(text)) {
    const u: UnitStatus = {
      load: r.LoadState ?? '',
      active: r.ActiveState ?? '',
      sub: r.SubState ?? '',
      mainPid: Number(r.MainPID ?? 0) || 0,
      execStart: parseExecStart(r.ExecStart),
      dropIns: (r.DropInPaths ?? '').split(/\s+/).filter(Boolean),
    }
    switch (r.Id) {
      case 'docker.service': {
        out.docker = u
        break
      }

      case 'etcd.service': {
        out.etcd = u
        break
      }

      case 'flanneld.service': {
        out.flanneld = u
        break
      }
    }
  }

  return out
}

/** `ip -j -4 route show` (or its text form). */
export function parseRoutes(text: string): Route[] {
  const t = text.trim()
  if (t.startsWith('[')) {
    try {
      const arr = JSON.parse(t) as {dst: string; gateway?: string; dev?: string; flags?: string[]}[]
      return arr.map((r) => ({dst: r.dst, gateway: r.gateway, dev: r.dev, flags: r.flags ?? []}))
    } catch {
      return []
    }
  }

  const out: Route[] = []
  for (const line of t.replace(/^#text\n?/, '').split('\n')) {
    const f = line.trim().split(/\s+/)
    if (!f[0]) continue
    const at = (k: string) => {
      const i = f.indexOf(k)
      return i === -1 ? undefined : f[i + 1]
    }

    out.push({dst: f[0], gateway: at('via'), dev: at('dev'), flags: f.includes('onlink') ? ['onlink'] : []})
  }

  return out
}

export function parseVxlan(text: string): VxlanLink | undefined {
  const t = text.trim()
  if (!t.startsWith('[')) return undefined
  try {
    const [l] = JSON.parse(t) as {
      ifname: string
      mtu?: number
      flags?: string[]
      linkinfo?: {info_kind?: string; info_data?: {id?: number; local?: string; port?: number}}
    }[]
    if (!l) return undefined
    const d = l.linkinfo?.info_data
    return {
      name: l.ifname,
      mtu: l.mtu,
      up: (l.flags ?? []).includes('UP'),
      kind: l.linkinfo?.info_kind,
      vni: d?.id,
      local: d?.local,
      port: d?.port,
    }
  } catch {
    return undefined
  }
}

function parseSwaps(text: string): HostData['swaps'] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && f[0].startsWith('/'))
    .map((f) => ({path: f[0], type: f[1], sizeKb: Number(f[2])}))
}

/** `firewall-cmd --list-all` → which of `ports` are open (port, a known service, or zone target ACCEPT). */
export function parseFirewalld(text: string, ports: string[]): HostData['firewalld'] {
  const state = kv(text.split('\n')[0] ?? '').state ?? ''
  if (state !== 'active') return {state, ports: []}
  const field = (k: string) => new RegExp(`^\\s*${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? ''
  const target = field('target')
  const listed = new Set(field('ports').split(/\s+/).filter(Boolean))
  const services = new Set(field('services').split(/\s+/).filter(Boolean))
  const byService: Record<string, string[]> = {'etcd-client': ['2379/tcp'], 'etcd-server': ['2380/tcp']}
  const viaService = new Set([...services].flatMap((s) => byService[s] ?? []))
  const trusted = /^@trusted-sources=(.*)$/m.exec(text)
  return {
    state,
    ports: ports.map((p) => ({port: p, open: target === 'ACCEPT' || listed.has(p) || viaService.has(p)})),
    ...(trusted ? {trustedSources: trusted[1].split(/\s+/).filter(Boolean)} : {}),
  }
}

/** Parses the checks script's output and the keys output (pure). */
export function parseDoctorOutput(c: Cluster, h: Host, out: string, keysOut = '', clock?: HostData['clock']): HostData {
  const sec = splitSections(out)
  const get = (n: string) => sec.get(n) ?? ''
  const missingTools: string[] = []

  const se = kv(get('selinux'))
  const ge = se.getenforce?.toLowerCase()
  const selinux: HostData['selinux'] =
    ge === 'enforcing' || ge === 'permissive' || ge === 'disabled'
      ? ge
      : se.enforce === undefined
        ? undefined
        : se.enforce === '1'
          ? 'enforcing'
          : 'permissive'

  const sc = kv(get('sysctl'))
  const ipt = runOut(sec, 'iptables')
  let iptables: HostData['iptables']
  if (ipt.stdout.trim().startsWith('#missing')) missingTools.push('iptables')
  else
    iptables = {rules: ipt.stdout, error: ipt.rc === 0 ? undefined : ipt.stderr.trim() || `iptables exited ${ipt.rc}`}

  const files: Record<string, string | undefined> = {}
  const {public: pub, keys} = hostFiles(c, h)
  for (const [i, f] of pub.entries()) files[f] = fileSection(sec.get(`file-${i}`))
  const ksec = splitSections(keysOut)
  for (const [i, f] of keys.entries()) files[f] = fileSection(ksec.get(`key-${i}`))

  let etcd: EtcdView | undefined
  if (h.roles.etcd) {
    const process = sec.has('etcd-proc') ? parseEtcdProcess(get('etcd-proc')) : undefined
    const quota = process ? etcdSetting(process, 'quota-backend-bytes') : undefined
    etcd = {
      quotaBytes: quota && /^\d+$/.test(quota) ? Number(quota) : undefined,
      process,
      endpoints: parseEndpointJobs(c, sec),
      reads: parseReads(c, sec),
    }
  }

  const warnings: string[] = []
  return {
    clock,
    swaps: parseSwaps(get('swaps')),
    selinux,
    firewalld: parseFirewalld(runOut(sec, 'firewalld').stdout, neededPorts(c, h)),
    ipForward: sc['net/ipv4/ip_forward'],
    bridgeNfCallIptables: sc['net/bridge/bridge-nf-call-iptables'],
    bridgeDir: sc['bridge-dir'] === '1',
    iptables,
    units: parseUnits(get('units')),
    etcd,
    files,
    addrs: sec.has('addrs') ? parseIpAddr(get('addrs').replace(/^#text\n?/, ''), warnings) : [],
    routes: sec.has('routes') ? parseRoutes(get('routes')) : [],
    vxlan: sec.has('vxlan') ? parseVxlan(get('vxlan')) : undefined,
    dockerCmdline: get('dockerd').trim() || undefined,
    health: parseHealth(c, sec, missingTools),
    dockerVendorExecStart: get('docker-vendor')
      .split('\n')
      .map((l) => l.replace(/^ExecStart=/, '').trim())
      .findLast(Boolean),
    missingTools,
  }
}

/** The http-healthz / http-readyz sections: curl's output with `@code=NNN` on the last line. */
export function parseHealth(c: Cluster, sec: Map<string, string>, missingTools: string[]): HostData['health'] {
  const out: NonNullable<HostData['health']> = {}
  for (const [name, url] of Object.entries(healthUrls(c)) as ['healthz' | 'readyz', string | undefined][]) {
    if (!url || !sec.has(`http-${name}`)) continue
    const text = sec.get(`http-${name}`) ?? ''
    if (text.trim() === '#no-curl') {
      if (!missingTools.includes('curl')) missingTools.push('curl')
      continue
    }

    const m = /\n?@code=(\d+)\s*$/.exec(text)
    const code = m && m[1] !== '000' ? Number(m[1]) : undefined
    out[name] = {url, code, body: (m ? text.slice(0, m.index) : text).trim()}
  }

  return Object.keys(out).length > 0 ? out : undefined
}

/** etcd's boolean flags: given bare on a command line (`--client-cert-auth`). */
const ETCD_BOOL_FLAGS = new Set([
  'auto-tls',
  'client-cert-auth',
  'enable-pprof',
  'enable-v2',
  'force-new-cluster',
  'peer-auto-tls',
  'peer-client-cert-auth',
  'strict-reconfig-check',
])

/** The `etcd-proc` section: `arg X` lines (argv) and `env ETCD_*=...` lines (pure). */
export function parseEtcdProcess(text: string): {args: string[]; env: Record<string, string>} | undefined {
  const args: string[] = []
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    if (line.startsWith('arg ')) args.push(line.slice(4))
    else if (line.startsWith('env ')) {
      const i = line.indexOf('=')
      if (i > 4) env[line.slice(4, i)] = line.slice(i + 1)
    }
  }

  return args.length > 0 ? {args, env} : undefined
}

/**
 * A setting of the running etcd as etcd itself resolves it: the command-line flag, else the
 * ETCD_<NAME> variable (etcd refuses to start when both are given). undefined when neither is.
 */
export function etcdSetting(p: {args: string[]; env: Record<string, string>}, name: string): string | undefined {
  let flag: string | undefined // the last one given wins, as in Go's flag package
  for (let i = 1; i < p.args.length; i++) {
    const a = p.args[i].replace(/^--?/, '')
    if (a === p.args[i]) continue
    if (a.startsWith(`${name}=`)) flag = a.slice(name.length + 1)
    else if (a === name) flag = ETCD_BOOL_FLAGS.has(name) ? 'true' : p.args[i + 1]
  }

  return flag ?? p.env[`ETCD_${name.toUpperCase().replaceAll('-', '_')}`]
}

export function parseReads(c: Cluster, sec: Map<string, string>): ClusterReads | undefined {
  if (!sec.has('members')) return undefined
  return {
    memberList: runOut(sec, 'members'),
    alarms: runOut(sec, 'alarms'),
    keysV3: runOut(sec, 'keys3'),
    configV2: etcdMembers(c).flatMap((m, i) =>
      sec.has(`cfg2-${i}`) ? [{member: m.name, run: runOut(sec, `cfg2-${i}`)}] : [],
    ),
    leasesV2: sec.has('leases2') ? runOut(sec, 'leases2') : undefined,
  }
}

/** eh-<i> / es-<i> sections → per member name. */
export function parseEndpointJobs(c: Cluster, sec: Map<string, string>): EtcdView['endpoints'] {
  const out: EtcdView['endpoints'] = {}
  for (const [i, m] of etcdMembers(c).entries()) {
    if (sec.has(`eh-${i}`) || sec.has(`es-${i}`))
      out[m.name] = {health: runOut(sec, `eh-${i}`), status: runOut(sec, `es-${i}`)}
  }

  return out
}

/** Pings from `source` (its docker0 address) to every target, all at once (pure). */
export function pingScript(source: string, targets: {address: string}[]): string {
  const lines = [
    'LC_ALL=C; export LC_ALL',
    'command -v ping >/dev/null 2>&1 || { echo "#no-ping"; exit 0; }',
    `p() { out=$(ping -n -q -c 1 -W 1 -I "$1" "$2" 2>&1); rc=$?; printf '%s %s %s\\n' "$2" "$rc" "$(printf '%s' "$out" | sed -n 's|^rtt[^=]*= \\([0-9.]*\\)/.*|\\1|p')"; }`,
    ...targets.map((t) => `p ${shq(source)} ${shq(t.address)} &`),
    'wait',
    '',
  ]
  return lines.join('\n')
}

export function parsePingOutput(out: string, targets: {target: string; address: string}[]): PingResult[] {
  if (out.includes('#no-ping'))
    return targets.map((t) => ({...t, ok: false, detail: 'ping is not installed on the source host'}))
  const seen = new Map<string, {rc: number; rtt?: number}>()
  for (const line of out.split('\n')) {
    const [addr, rc, rtt] = line.trim().split(/\s+/)
    if (addr && rc !== undefined && /^\d+$/.test(rc))
      seen.set(addr, {rc: Number(rc), rtt: rtt ? Number(rtt) : undefined})
  }

  return targets.map((t) => {
    const r = seen.get(t.address)
    if (!r) return {...t, ok: false, detail: 'no answer from the ping script'}
    if (r.rc === 0) return {...t, ok: true, rttMs: r.rtt}
    return {...t, ok: false, detail: r.rc === 1 ? 'no reply within 1 s' : `ping exited ${r.rc}`}
  })
}

// ---------------------------------------------------------------- I/O

/** One host: the checks script, the keys and the clock, on three channels at once. */
export async function gatherHost(remote: Remote, c: Cluster, h: Host, opts: {reads?: boolean} = {}): Promise<HostData> {
  const {keys} = hostFiles(c, h)
  const timeoutMs = c.timeouts.doctorHost
  const main = remote.run('sh -s', {stdin: doctorScript(c, h, opts), timeoutMs})
  const secret =
    keys.length > 0
      ? remote.run('sh -s', {stdin: keysScript(keys), logOutput: false, timeoutMs})
      : Promise.resolve({stdout: ''})
  const clock = (async () => {
    const sendWall = Date.now()
    const t0 = performance.now()
    const r = await remote.exec('date +%s.%N', {sudo: false, timeoutMs: 5000})
    const elapsed = performance.now() - t0
    if (r.code !== 0) return undefined
    const k = computeSkew(r.stdout, sendWall, sendWall + elapsed)
    return Number.isFinite(k.skewMs) ? {skewMs: k.skewMs, uncertaintyMs: k.uncertaintyMs} : undefined
  })()
  const [m, k, ck] = await Promise.all([main, secret, clock])
  return parseDoctorOutput(c, h, m.stdout, k.stdout, ck)
}

/** The second round on one member (see followUpScript). */
export async function followUp(
  remote: Remote,
  c: Cluster,
  opts: {members: Host[]; reads: boolean},
): Promise<{endpoints: EtcdView['endpoints']; reads?: ClusterReads}> {
  const r = await remote.run('sh -s', {stdin: followUpScript(c, opts), timeoutMs: c.timeouts.doctorHost})
  const sec = splitSections(r.stdout)
  return {endpoints: parseEndpointJobs(c, sec), reads: parseReads(c, sec)}
}

export async function pingFrom(
  remote: Remote,
  source: string,
  targets: {target: string; address: string}[],
): Promise<PingResult[]> {
  if (targets.length === 0) return []
  const r = await remote.run('sh -s', {stdin: pingScript(source, targets), timeoutMs: 10_000})
  return parsePingOutput(r.stdout, targets)
}
