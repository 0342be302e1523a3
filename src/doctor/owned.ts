import {etcdSetting} from '../host/etcd.js'
import {vendorExecStart} from '../init/common.js'
/**
 * What an edited or injected file would change (pure):
 *
 * - `files.managed`: every file kflan renders and owns on a host (unit files, the docker drop-in,
 *   etcd's environment files, sysctl and modules files) has exactly the lines kflan renders for
 *   this inventory. Any extra or changed line is a failure: a unit line can run a command as root
 *   (ExecStartPre=), an environment line can open etcd to plain http.
 * - `etcd.tls`: the running etcd (its command line and ETCD_* environment, read from /proc)
 *   listens only on kflan's https URLs and requires client certificates from clients and peers,
 *   whatever its files say now (a file edited after the last start shows only in files.managed).
 */
import {clientUrl, type Cluster, type Host, peerUrl} from '../inventory/model.js'
import {renderHost} from '../render/index.js'
import {etcdPaths} from '../render/paths.js'
import {ownedFiles} from './gather.js'
import {type CheckResult, type DoctorInput, type HostData, resultFor, withData} from './types.js'

/** What `kflan init` would write to each owned file on this host (pure); the join file has no fixed content. */
export function expectedOwned(c: Cluster, h: Host, d: HostData): Map<string, string> {
  // The drop-in wraps the vendor unit's own ExecStart; systemd's ExecStart is already the drop-in's.
  const dockerExecStart = d.dockerVendorExecStart ?? vendorExecStart(d.units.docker?.execStart)
  const out = new Map<string, string>()
  for (const f of renderHost(c, h, {pki: () => '', dockerExecStart}))
    if (ownedFiles(c, h).includes(f.path)) out.set(f.path, f.content)
  return out
}

const JOIN_KEYS = new Set(['ETCD_INITIAL_CLUSTER', 'ETCD_INITIAL_CLUSTER_STATE'])

/** Lines of `got` not in `want` (extra or changed) and lines of `want` not in `got` (pure). */
export function lineDiff(want: string, got: string): {extra: string[]; missing: string[]} {
  const split = (t: string) =>
    t
      .split('\n')
      .map((l) => l.replace(/\s+$/, ''))
      .filter((l) => l !== '')
  const count = (ls: string[]) => ls.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>())
  const w = count(split(want))
  const g = count(split(got))
  const extra = split(got).filter((l) => {
    const n = w.get(l) ?? 0
    w.set(l, n - 1)
    return n <= 0
  })
  const missing = split(want).filter((l) => {
    const n = g.get(l) ?? 0
    g.set(l, n - 1)
    return n <= 0
  })
  return {extra, missing}
}

const show = (lines: string[]) =>
  lines
    .slice(0, 3)
    .map((l) => JSON.stringify(l))
    .join(', ') + (lines.length > 3 ? `, and ${lines.length - 3} more` : '')

export function ownedFileChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const out: CheckResult[] = []
  for (const s of withData(input)) {
    const h = s.host
    if (!h.roles.etcd && !h.roles.flannel) continue
    const d = s.data
    const r = resultFor('files.managed', h.name)
    const problems: string[] = []
    let checked = 0
    for (const [path, want] of expectedOwned(c, h, d)) {
      const got = d.files[path]
      if (got === undefined) continue // a missing unit or drop-in is the unit checks' business
      checked++
      const {extra, missing} = lineDiff(want, got)
      if (extra.length > 0)
        problems.push(
          `${path} has ${extra.length === 1 ? 'a line' : `${extra.length} lines`} kflan did not write: ${show(extra)}`,
        )
      else if (missing.length > 0) problems.push(`${path} lacks ${show(missing)}`)
    }

    const join = h.roles.etcd ? d.files[etcdPaths(c).join] : undefined
    if (join !== undefined) {
      checked++
      const foreign = join
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.trim().startsWith('#') && !JOIN_KEYS.has(l.split('=')[0].trim()))
      if (foreign.length > 0) problems.push(`${etcdPaths(c).join} sets more than the initial cluster: ${show(foreign)}`)
    }

    if (checked === 0) continue
    out.push(
      problems.length === 0
        ? r.ok(`${checked} file${checked === 1 ? '' : 's'} kflan owns as rendered for this inventory`)
        : r.fail(
            problems.join('; '),
            `someone or something edited a file kflan owns: read the lines above, then \`kflan init\` rewrites it (\`kflan init --dry-run\` shows the diff) and restarts what it changes`,
          ),
    )
  }

  return out
}

/** The running member's listen URLs and certificate authentication against what kflan configures (pure). */
export function etcdTlsChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const out: CheckResult[] = []
  for (const s of withData(input)) {
    const h = s.host
    const p = s.data.etcd?.process
    if (!h.roles.etcd || !p) continue
    const r = resultFor('etcd.tls', h.name)
    const {ca} = etcdPaths(c)
    const get = (name: string) => etcdSetting(p, name)
    const urls = (name: string) =>
      (get(name) ?? '')
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean)
    const problems: string[] = []
    const config = get('config-file')
    if (config) problems.push(`it reads a config file kflan did not write (${config}), which overrides every flag`)
    const expectUrls = (name: string, want: string[]) => {
      const got = urls(name)
      const plain = got.filter((u) => !/^https:\/\//.test(u))
      const extra = got.filter((u) => !want.includes(u) && !plain.includes(u))
      if (plain.length > 0)
        problems.push(`--${name} has ${plain.join(', ')}: plain http, no TLS and no client certificates`)
      if (extra.length > 0) problems.push(`--${name} has ${extra.join(', ')}, which kflan did not configure`)
      if (got.length === 0) problems.push(`--${name} is not set (etcd then listens on http://localhost)`)
    }

    expectUrls('listen-client-urls', [clientUrl(c, h), `https://127.0.0.1:${c.etcd.clientPort}`])
    expectUrls('listen-peer-urls', [peerUrl(c, h)])
    const metrics = urls('listen-metrics-urls')
    if (metrics.length > 0)
      problems.push(`--listen-metrics-urls ${metrics.join(',')}: kflan does not open a metrics listener`)
    for (const flag of ['client-cert-auth', 'peer-client-cert-auth']) {
      if (get(flag) !== 'true')
        problems.push(
          `--${flag} is ${get(flag) ?? 'off'}: ${flag.startsWith('peer') ? 'peers' : 'clients'} connect without a certificate from the cluster CA`,
        )
    }

    for (const flag of ['trusted-ca-file', 'peer-trusted-ca-file']) {
      if (get(flag) !== ca) problems.push(`--${flag} is ${get(flag) ?? 'not set'}, not ${ca}`)
    }

    for (const flag of ['auto-tls', 'peer-auto-tls'])
      if (get(flag) === 'true') problems.push(`--${flag} is on: self-signed certificates`)
    out.push(
      problems.length === 0
        ? r.ok(
            `the running etcd listens on ${urls('listen-client-urls').join(', ')} (clients) and ${urls('listen-peer-urls').join(', ')} (peers), certificates required from both`,
          )
        : r.fail(
            `the running etcd: ${problems.join('; ')}`,
            `check etcd.service and ${etcdPaths(c).conf} (files.managed names edited lines); \`kflan init\` rewrites them and restarts etcd`,
          ),
    )
  }

  return out
}
