/**
 * What `kflan reset` reads on a host besides the common facts (src/remote/facts.ts): kflan's own
 * bookkeeping (managed list, backups), iptables, routes, flannel's runtime files, docker's
 * daemon.json, leftovers of an interrupted reset. One round trip; a pure parser.
 */
import type {Cluster} from '../inventory/model.js'
import type {Remote} from '../remote/ssh.js'

import {splitSections} from '../remote/facts.js'
import {parseStatOutput, type RemoteFileState} from '../remote/file-stat.js'
import {shq} from '../remote/shell.js'
import {statePaths} from '../remote/state-dir.js'
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
  /** `ip -4 route show` lines. */
  routes: string[]
  /** flannel's runtime files that exist (subnet file, mk-docker-opts output). */
  runFiles: string[]
  /** /etc/docker/daemon.json sets these (then kflan must not pass them as flags: docker refuses both). */
  dockerDaemonJson: {bip: boolean; pools: boolean}
  /** A drop-in left by an interrupted reset. */
  resetDropIn: boolean
  /** `*.wants/` symlinks of etcd.service / flanneld.service (systemctl disable removes them). */
  wants: string[]
}

/** The script (pure). */
export function resetFactsScript(c: Cluster, stateDir?: string): string {
  const sp = statePaths(stateDir)
  const runFiles = [c.flannel.subnetFile, DOCKER_OPTS_FILE].map(shq).join(' ')
  return [
    'LC_ALL=C; export LC_ALL',
    `s() { printf '\\n@@kflan:%s@@\\n' "$1"; }`,
    'has() { command -v "$1" >/dev/null 2>&1; }',
    `s state; if [ -d ${shq(sp.stateDir)} ]; then echo exists=1; fi`,
    `M=${shq(sp.managed)}; B=${shq(sp.backup)}`,
    // kind (F file, X other, N none), path, managed (M/-), backup (B/-), mode: parseStatOutput's format.
    `s files; { cat "$M" 2>/dev/null; if [ -d "$B" ]; then (cd "$B" && find . ! -type d | sed 's|^\\.||'); fi; } | sort -u | while IFS= read -r p; do`,
    `  case "$p" in /*) ;; *) continue ;; esac`,
    `  if grep -qxF -- "$p" "$M" 2>/dev/null; then m=M; else m=-; fi`,
    `  if [ -e "$B$p" ] || [ -L "$B$p" ]; then b=B; else b=-; fi`,
    `  if [ -f "$p" ]; then printf 'F\\t%s\\t-\\t%s\\t-\\t0\\t%s\\t%s\\n' "$p" "$(stat -L -c %a -- "$p")" "$m" "$b";`,
    `  elif [ -e "$p" ] || [ -L "$p" ]; then printf 'X\\t%s\\t%s\\t%s\\n' "$p" "$m" "$b"; else printf 'N\\t%s\\t%s\\t%s\\n' "$p" "$m" "$b"; fi`,
    `done`,
    `s ipt-filter; if has iptables; then iptables -w -S 2>&1; else echo '#missing'; fi`,
    `s ipt-nat; if has iptables; then iptables -w -t nat -S 2>&1; else echo '#missing'; fi`,
    's routes; ip -4 route show 2>/dev/null',
    `s run; for f in ${runFiles}; do if [ -e "$f" ]; then echo "$f"; fi; done`,
    's daemon-json; cat /etc/docker/daemon.json 2>/dev/null',
    `s reset-dropin; if [ -e ${shq(RESET_DOCKER_DROPIN)} ]; then echo present; fi`,
    `s wants; for f in /etc/systemd/system/*.wants/etcd.service /etc/systemd/system/*.wants/flanneld.service; do if [ -L "$f" ]; then echo "$f"; fi; done`,
    's end',
    '',
  ].join('\n')
}

const lines = (t: string | undefined): string[] => (t ?? '').split('\n').filter((l) => l.trim() !== '')

/** Parses the script's output (pure). */
export function parseResetFacts(out: string): ResetFacts {
  const sec = splitSections(out)
  if (!sec.has('end')) throw new Error('reset facts output is incomplete (no end marker)')
  const ipt = (name: string) => {
    const l = lines(sec.get(name))
    return l[0] === '#missing' ? undefined : l.filter((x) => x.startsWith('-'))
  }

  const filter = ipt('ipt-filter')
  const nat = ipt('ipt-nat')
  const json = sec.get('daemon-json') ?? ''
  let dockerDaemonJson = {bip: /"bip"\s*:/.test(json), pools: /"default-address-pools"\s*:/.test(json)}
  try {
    const j = JSON.parse(json) as Record<string, unknown>
    dockerDaemonJson = {bip: j.bip !== undefined, pools: j['default-address-pools'] !== undefined}
  } catch {
    /* empty or unreadable: the regexes above decide */
  }

  return {
    stateDir: lines(sec.get('state')).includes('exists=1'),
    files: parseStatOutput(sec.get('files') ?? ''),
    iptables: filter && nat ? {filter, nat} : undefined,
    routes: lines(sec.get('routes')),
    runFiles: lines(sec.get('run')),
    dockerDaemonJson,
    resetDropIn: lines(sec.get('reset-dropin')).includes('present'),
    wants: lines(sec.get('wants')),
  }
}

export async function gatherResetFacts(remote: Remote, c: Cluster, stateDir?: string): Promise<ResetFacts> {
  const r = await remote.run('sh -s', {stdin: resetFactsScript(c, stateDir)})
  return parseResetFacts(r.stdout)
}
