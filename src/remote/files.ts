/**
 * Atomic remote file writes that skip when the content already matches, back up files kflan did
 * not create, and can instead compute a dry-run diff. Built for few round trips: one `exec` reads
 * the state of every file of a batch, one more writes all that changed.
 *
 * kflan's own bookkeeping on each host:
 *   /var/lib/kflan/managed           absolute paths of files kflan created (one per line)
 *   /var/lib/kflan/backup/<abs path> the original of a file kflan overwrote but did not create
 */
import {createHash, randomBytes} from 'node:crypto'

import type {Remote} from './ssh.js'

import {isSecretPath, renderChange} from './diff.js'
import {RemoteCommandError} from './errors.js'
import {shq} from './shell.js'

export const KFLAN_STATE_DIR = '/var/lib/kflan'
export const MANAGED_LIST = `${KFLAN_STATE_DIR}/managed`
export const BACKUP_DIR = `${KFLAN_STATE_DIR}/backup`

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

export interface WriteOptions {
  /** Compute results and diffs, change nothing. */
  dryRun?: boolean
  /** States read earlier in this run (statFiles); paths missing here are read now. */
  known?: Map<string, RemoteFileState>
  /** kflan's state dir on the host (managed list, backups). Default /var/lib/kflan; tests change it. */
  stateDir?: string
}

/** Paths of kflan's bookkeeping under a state dir. */
export function statePaths(stateDir = KFLAN_STATE_DIR): {
  stateDir: string
  managed: string
  backup: string
  cache: string
  hashes: string
} {
  return {
    stateDir,
    managed: `${stateDir}/managed`,
    backup: `${stateDir}/backup`,
    cache: `${stateDir}/cache`,
    hashes: `${stateDir}/hashes`,
  }
}

/**
 * This run's id (random, fixed for the process): part of every remote temporary file name, so two
 * kflan runs against the same host (two operators' machines) never write the same temp file.
 */
export const RUN_ID = randomBytes(6).toString('hex')

/** A temp file next to `dest`, unique to this run: `<dir>/.kflan-tmp.<run id>.<base>`. */
export function remoteTempPath(dest: string, runId = RUN_ID): string {
  const i = dest.lastIndexOf('/')
  return `${dest.slice(0, i)}/.kflan-tmp.${runId}.${dest.slice(i + 1)}`
}

export const sha256hex = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex')

/** Rejects paths the remote scripts cannot carry safely. */
export function checkRemotePath(p: string): void {
  if (!p.startsWith('/') || /[\n\t\\\0]/.test(p) || p.split('/').includes('..') || p.endsWith('/')) {
    throw new Error(
      `invalid remote path ${JSON.stringify(p)}: must be absolute, without .., newlines, tabs or backslashes`,
    )
  }
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
  const contentChanged = st.sha256 !== sha256hex(content)
  const modeChanged = (st.mode ?? -1) !== (spec.mode & 0o7777)
  const ownerChanged = spec.owner !== undefined && st.owner !== spec.owner
  const change: FileChange = {
    path: spec.path,
    result: contentChanged || modeChanged || ownerChanged ? 'updated' : 'unchanged',
    contentChanged,
    modeChanged,
    ownerChanged,
  }
  if (contentChanged && !st.managed) change.backup = `${statePaths(stateDir).backup}${spec.path}`
  return change
}

const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0')

/** The shell script that applies planned changes (pure); content travels base64 in here-docs. */
export function writeScript(
  items: {spec: FileSpec; change: FileChange}[],
  opts: {nonce?: string; stateDir?: string; runId?: string} = {},
): string {
  const eof = `KFLAN_EOF_${opts.nonce ?? randomBytes(6).toString('hex')}`
  const {stateDir: KFLAN_STATE_DIR, managed: MANAGED_LIST, backup: BACKUP_DIR} = statePaths(opts.stateDir)
  const lines = [
    'umask 022',
    // kw PATH MODE OWNER BACKUP(0/1) MANAGED(0/1) < base64 content
    `kw() {`,
    `  d=\${1%/*}; [ -n "$d" ] || d=/`,
    `  mkdir -p -- "$d" || return 1`,
    // Backups may hold secrets: their tree is private to root.
    `  if [ "$4" = 1 ] && [ -e "$1" ] && [ ! -e "${BACKUP_DIR}$1" ]; then (umask 077; mkdir -p -- "${BACKUP_DIR}$d") && cp -pP -- "$1" "${BACKUP_DIR}$1" || return 1; fi`,
    `  t="$d/.kflan-tmp.${opts.runId ?? RUN_ID}.\${1##*/}"`,
    // The temp file is private until chmod: a key is never readable by others, even briefly.
    `  umask 077; base64 -d > "$t"; rc=$?; umask 022`,
    `  [ $rc = 0 ] && chmod "$2" "$t" && { [ -z "$3" ] || chown "$3" "$t"; } && mv -f -- "$t" "$1" || { rm -f -- "$t"; return 1; }`,
    `  if [ "$5" = 1 ]; then mkdir -p ${KFLAN_STATE_DIR} && { grep -qxF -- "$1" ${MANAGED_LIST} 2>/dev/null || printf '%s\\n' "$1" >> ${MANAGED_LIST}; }; fi`,
    `}`,
    `km() { chmod "$2" "$1" && { [ -z "$3" ] || chown "$3" "$1"; }; }`,
  ]
  for (const {spec, change} of items) {
    if (change.result === 'unchanged') continue
    checkRemotePath(spec.path)
    const p = shq(spec.path)
    const owner = shq(spec.owner ?? '')
    if (change.contentChanged) {
      const content = typeof spec.content === 'string' ? Buffer.from(spec.content) : spec.content
      const b64 = content.toString('base64').replaceAll(/.{1,76}/g, '$&\n')
      lines.push(
        `if kw ${p} ${octal(spec.mode)} ${owner} ${change.backup ? 1 : 0} ${change.result === 'created' ? 1 : 0} <<'${eof}'`,
        `${b64}${eof}`,
        `then printf 'ok\\t%s\\n' ${p}; else printf 'fail\\t%s\\n' ${p}; fi`,
      )
    } else {
      lines.push(
        `if km ${p} ${octal(spec.mode)} ${owner} </dev/null; then printf 'ok\\t%s\\n' ${p}; else printf 'fail\\t%s\\n' ${p}; fi`,
      )
    }
  }

  return `${lines.join('\n')}\n`
}

/** Fetches the content of small remote files in one round trip (base64 in transit). */
export async function readFiles(
  remote: Remote,
  paths: string[],
  opts: {secret?: boolean} = {},
): Promise<Map<string, Buffer | undefined>> {
  const out = new Map<string, Buffer | undefined>()
  if (paths.length === 0) return out
  for (const p of paths) checkRemotePath(p)
  const script = paths
    .map((p) => `if [ -f ${shq(p)} ]; then printf 'F\\t'; base64 -w0 < ${shq(p)}; echo; else echo N; fi`)
    .join('\n')
  const r = await remote.run(script, {logOutput: !opts.secret})
  const lines = r.stdout.split('\n')
  for (const [i, p] of paths.entries()) {
    const l = lines[i] ?? 'N'
    out.set(p, l.startsWith('F\t') ? Buffer.from(l.slice(2), 'base64') : undefined)
  }

  return out
}

/** Reads one remote file (as root); undefined when it does not exist. */
export async function readRemoteFile(
  remote: Remote,
  path: string,
  opts: {secret?: boolean} = {},
): Promise<Buffer | undefined> {
  return (await readFiles(remote, [path], opts)).get(path)
}

/**
 * Writes many files: one round trip to compare, one to write whatever differs (none when all
 * match). With dryRun, a second round trip fetches the old text of changed non-secret files for
 * the diff, and nothing is written.
 */
export async function writeFiles(remote: Remote, specs: FileSpec[], opts: WriteOptions = {}): Promise<FileChange[]> {
  if (specs.length === 0) return []
  const seen = new Set<string>()
  for (const s of specs) {
    checkRemotePath(s.path)
    if (seen.has(s.path)) throw new Error(`${s.path} given twice in one write batch`)
    seen.add(s.path)
  }

  const states = await statKnown(
    remote,
    specs.map((s) => s.path),
    opts,
  )
  const items = specs.map((spec) => ({spec, change: planFile(spec, states.get(spec.path)!, opts.stateDir)}))
  const todo = items.filter((i) => i.change.result !== 'unchanged')

  if (opts.dryRun) {
    const secret = (s: FileSpec) => s.secret ?? isSecretPath(s.path)
    const fetch = todo.filter(
      (i) =>
        i.change.contentChanged &&
        i.change.result === 'updated' &&
        !secret(i.spec) &&
        (states.get(i.spec.path)!.size ?? 0) <= 1 << 20,
    )
    const old = await readFiles(
      remote,
      fetch.map((i) => i.spec.path),
    )
    for (const {spec, change} of items) {
      const st = states.get(spec.path)!
      change.diff =
        change.result === 'unchanged'
          ? ''
          : renderChange({
              path: spec.path,
              old: old.get(spec.path),
              oldExists: st.exists,
              oldSha256: st.sha256,
              next: typeof spec.content === 'string' ? Buffer.from(spec.content) : spec.content,
              secret: secret(spec),
              oldMode: st.mode,
              newMode: spec.mode,
              oldOwner: st.owner,
              newOwner: spec.owner,
            })
    }

    return items.map((i) => i.change)
  }

  if (todo.length > 0) {
    const script = writeScript(todo, {stateDir: opts.stateDir})
    // The script (with the content) goes on stdin: no argv size limit, nothing secret in argv.
    const r = await remote.run('sh -s', {stdin: script, logOutput: true})
    const failed = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('fail\t'))
      .map((l) => l.slice(5))
    const okd = new Set(
      r.stdout
        .split('\n')
        .filter((l) => l.startsWith('ok\t'))
        .map((l) => l.slice(3)),
    )
    const missing = todo.filter((i) => !okd.has(i.spec.path)).map((i) => i.spec.path)
    if (failed.length > 0 || missing.length > 0) {
      throw new RemoteCommandError({
        host: remote.name,
        command: `write ${[...new Set([...failed, ...missing])].join(', ')}`,
        code: r.code,
        stderr: r.stderr,
        hint: 'Check free space and permissions on the host (and that the directory is not read-only).',
      })
    }
  }

  return items.map((i) => i.change)
}

/** Writes one file atomically; 'unchanged' when content, mode (and owner) already match. */
export async function writeFile(remote: Remote, spec: FileSpec, opts: WriteOptions = {}): Promise<WriteResult> {
  return (await writeFiles(remote, [spec], opts))[0].result
}

export type RemoveResult = 'removed' | 'restored' | 'absent' | 'kept'

/**
 * Undoes kflan's writes (for reset): a file kflan created is deleted (and dropped from the
 * managed list); a file it overwrote gets its backup back; anything else is kept.
 */
export async function removeFiles(
  remote: Remote,
  paths: string[],
  opts: WriteOptions = {},
): Promise<Map<string, RemoveResult>> {
  const out = new Map<string, RemoveResult>()
  if (paths.length === 0) return out
  const {managed: MANAGED_LIST, backup: BACKUP_DIR} = statePaths(opts.stateDir)
  const states = await statFiles(remote, paths, opts)
  const cmds: string[] = []
  for (const p of paths) {
    const st = states.get(p)!
    let r: RemoveResult
    if (st.hasBackup) {
      r = 'restored'
      cmds.push(`mv -f -- ${shq(`${BACKUP_DIR}${p}`)} ${shq(p)}`)
    } else if (st.managed) {
      r = st.exists ? 'removed' : 'absent'
      cmds.push(`rm -f -- ${shq(p)}`)
    } else r = st.exists ? 'kept' : 'absent'
    const tmp = remoteTempPath(MANAGED_LIST)
    if (st.managed)
      cmds.push(`{ grep -vxF -- ${shq(p)} ${MANAGED_LIST} > ${tmp} || true; } && mv -f ${tmp} ${MANAGED_LIST}`)
    out.set(p, r)
  }

  if (!opts.dryRun && cmds.length > 0) await remote.run(cmds.join(' && '))
  return out
}
