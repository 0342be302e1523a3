/**
 * Atomic remote file writes that skip when the content already matches, back up files kflan did
 * not create, and can instead compute a dry-run diff; and reads of small remote files. Built for
 * few round trips: one `exec` reads the state of every file of a batch (file-stat.ts), one more
 * writes all that changed. The bookkeeping on the host (managed list, backups) is state-dir.ts.
 */
import {randomBytes} from 'node:crypto'

import type {Remote} from './ssh.js'

import {isSecretPath, renderChange} from './diff.js'
import {RemoteCommandError} from './errors.js'
import {
  type FileChange,
  type FileSpec,
  planFile,
  type RemoteFileState,
  statKnown,
  type WriteResult,
} from './file-stat.js'
import {shq} from './shell.js'
import {backupOnceShell, checkRemotePath, listManagedShell, RUN_ID, statePaths} from './state-dir.js'

export interface WriteOptions {
  /** Compute results and diffs, change nothing. */
  dryRun?: boolean
  /** States read earlier in this run (statFiles); paths missing here are read now. */
  known?: Map<string, RemoteFileState>
  /** kflan's state dir on the host (managed list, backups). Default /var/lib/kflan; tests change it. */
  stateDir?: string
}

const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0')

/** The shell script that applies planned changes (pure); content travels base64 in here-docs. */
export function writeScript(
  items: {spec: FileSpec; change: FileChange}[],
  opts: {nonce?: string; stateDir?: string; runId?: string} = {},
): string {
  const eof = `KFLAN_EOF_${opts.nonce ?? randomBytes(6).toString('hex')}`
  const {stateDir} = statePaths(opts.stateDir)
  const lines = [
    'umask 022',
    // kw PATH MODE OWNER BACKUP(0/1) MANAGED(0/1) < base64 content
    `kw() {`,
    `  d=\${1%/*}; [ -n "$d" ] || d=/`,
    `  mkdir -p -- "$d" || return 1`,
    `  ${backupOnceShell({when: '[ "$4" = 1 ]', file: '"$1"', dir: '"$d"', stateDir, orElse: 'return 1'})}`,
    `  t="$d/.kflan-tmp.${opts.runId ?? RUN_ID}.\${1##*/}"`,
    // The temp file is private until chmod: a key is never readable by others, even briefly.
    `  umask 077; base64 -d > "$t"; rc=$?; umask 022`,
    `  [ $rc = 0 ] && chmod "$2" "$t" && { [ -z "$3" ] || chown "$3" "$t"; } && mv -f -- "$t" "$1" || { rm -f -- "$t"; return 1; }`,
    `  if [ "$5" = 1 ]; then mkdir -p ${stateDir} && ${listManagedShell('"$1"', stateDir)}; fi`,
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
