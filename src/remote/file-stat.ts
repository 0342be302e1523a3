/**
 * What is on the host and what a write would change: the state of many files read in one round
 * trip (sha256, mode, owner, size, listed as kflan's, backed up), and the plan of one write from it
 * (pure). files.ts applies the plan, file-remove.ts undoes it.
 */
import type {Remote} from './ssh.js'

import {RemoteCommandError} from './errors.js'
import {shq} from './shell.js'
import {backupPath, checkRemotePath, KFLAN_STATE_DIR, needsBackup, sha256hex, statePaths} from './state-dir.js'

export interface FileSpec {
  /** Absolute path on the host. */
  path: string
  content: string | Buffer
  /** Permission bits, e.g. 0o644. */
  mode: number
  /** `user:group`; undefined leaves the owner to whoever writes (root). */
  owner?: string
  /** Never show the content in diffs or logs. Default: guessed from the path (`*-key.pem`, …). */
  secret?: boolean
}

export type WriteResult = 'unchanged' | 'created' | 'updated'

export interface RemoteFileState {
  path: string
  exists: boolean
  /** Regular file (or a symlink to one). */
  regular: boolean
  sha256?: string
  /** Permission bits. */
  mode?: number
  /** `user:group`. */
  owner?: string
  size?: number
  /** Listed in /var/lib/kflan/managed: kflan created it. */
  managed: boolean
  /** A backup of the original exists under /var/lib/kflan/backup. */
  hasBackup: boolean
}

export interface FileChange {
  path: string
  result: WriteResult
  contentChanged: boolean
  modeChanged: boolean
  ownerChanged: boolean
  /** Where the original was (or, in a dry run, would be) backed up. */
  backup?: string
  /** Dry run only: the unified diff / summary of the change ('' when unchanged). */
  diff?: string
}

/** The shell script that prints the state of many files at once (pure). */
export function statScript(paths: string[], stateDir = KFLAN_STATE_DIR, opts: {quick?: boolean} = {}): string {
  for (const p of paths) checkRemotePath(p)
  const {managed: MANAGED_LIST, backup: BACKUP_DIR, hashes: HASHES} = statePaths(stateDir)
  const q = paths.map(shq).join(' ')
  // quick: rsync's quick check for big files (binaries): a file whose size and mtime equal what
  // kflan recorded when it installed it keeps the recorded sha256 instead of being hashed again.
  const hash = opts.quick
    ? `set -- $(stat -L -c '%a %U:%G %s %Y' -- "$p"); s=$(awk -v p="$p" -v z="$3" -v t="$4" '$1==p && $2==z && $3==t {print $4; exit}' ${HASHES} 2>/dev/null); [ -n "$s" ] || { s=$(sha256sum < "$p") || s=x; };`
    : `s=$(sha256sum < "$p") || s=x; set -- $(stat -L -c '%a %U:%G %s' -- "$p");`
  return [
    `for p in ${q}; do`,
    `  if [ -f "$p" ]; then ${hash} printf 'F\\t%s\\t%s\\t%s\\t%s\\t%s' "$p" "\${s%% *}" "$1" "$2" "$3";`,
    `  elif [ -e "$p" ] || [ -L "$p" ]; then printf 'X\\t%s' "$p";`,
    `  else printf 'N\\t%s' "$p"; fi`,
    `  if [ -f ${MANAGED_LIST} ] && grep -qxF -- "$p" ${MANAGED_LIST}; then printf '\\tM'; else printf '\\t-'; fi`,
    `  if [ -e "${BACKUP_DIR}$p" ]; then printf '\\tB\\n'; else printf '\\t-\\n'; fi`,
    `done`,
  ].join('\n')
}

/** Parses statScript's output (pure). */
export function parseStatOutput(out: string): Map<string, RemoteFileState> {
  const m = new Map<string, RemoteFileState>()
  for (const line of out.split('\n')) {
    if (!line) continue
    const f = line.split('\t')
    const kind = f[0]
    const path = f[1]
    if (kind === 'F') {
      // eslint-disable-next-line unicorn/no-unreadable-array-destructuring -- the fields of the stat script's F line, by position
      const [, , sha, mode, owner, size, managed, backup] = f
      m.set(path, {
        path,
        exists: true,
        regular: true,
        sha256: /^[0-9a-f]{64}$/.test(sha) ? sha : undefined,
        mode: Number.parseInt(mode, 8),
        owner,
        size: Number(size),
        managed: managed === 'M',
        hasBackup: backup === 'B',
      })
    } else if (kind === 'X' || kind === 'N') {
      m.set(path, {path, exists: kind === 'X', regular: false, managed: f[2] === 'M', hasBackup: f[3] === 'B'})
    }
  }

  return m
}

/** States from `opts.known` where present; the rest in one round trip. */
export async function statKnown(
  remote: Remote,
  paths: string[],
  opts: {stateDir?: string; quick?: boolean; known?: Map<string, RemoteFileState>} = {},
): Promise<Map<string, RemoteFileState>> {
  const missing = paths.filter((p) => !opts.known?.has(p))
  const read = await statFiles(remote, missing, opts)
  return new Map(paths.map((p) => [p, opts.known?.get(p) ?? read.get(p)!]))
}

/** Reads the state of many remote files in one round trip. */
export async function statFiles(
  remote: Remote,
  paths: string[],
  opts: {stateDir?: string; quick?: boolean} = {},
): Promise<Map<string, RemoteFileState>> {
  if (paths.length === 0) return new Map()
  const r = await remote.run(statScript(paths, opts.stateDir, {quick: opts.quick}))
  const m = parseStatOutput(r.stdout)
  for (const p of paths)
    if (!m.has(p))
      throw new RemoteCommandError({
        host: remote.name,
        command: 'stat files',
        code: r.code,
        stderr: `no state reported for ${p}`,
      })
  return m
}

/** What a write would do, from the remote state (pure). */
export function planFile(spec: FileSpec, st: RemoteFileState, stateDir = KFLAN_STATE_DIR): FileChange {
  const content = typeof spec.content === 'string' ? Buffer.from(spec.content) : spec.content
  if (st.exists && !st.regular) {
    throw new Error(`${spec.path} exists on the host but is not a regular file: kflan will not replace it`)
  }

  if (!st.exists)
    return {path: spec.path, result: 'created', contentChanged: true, modeChanged: false, ownerChanged: false}
  const sha256 = sha256hex(content)
  const contentChanged = st.sha256 !== sha256
  const modeChanged = (st.mode ?? -1) !== (spec.mode & 0o7777)
  const ownerChanged = spec.owner !== undefined && st.owner !== spec.owner
  const change: FileChange = {
    path: spec.path,
    result: contentChanged || modeChanged || ownerChanged ? 'updated' : 'unchanged',
    contentChanged,
    modeChanged,
    ownerChanged,
  }
  if (needsBackup(st, sha256)) change.backup = backupPath(spec.path, stateDir)
  return change
}
