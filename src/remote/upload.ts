import {randomBytes} from 'node:crypto'
/**
 * Sending big local files (release tarballs) once, and installing binaries out of them.
 * Uploads are skipped when the remote sha256 already matches, go to a temp file that is verified
 * and then renamed into place, and never use SSH compression (tarballs are compressed already).
 */
import {createReadStream, promises as fsp} from 'node:fs'
import path from 'node:path'
import {performance} from 'node:perf_hooks'

import type {Remote} from './ssh.js'

import {RemoteCommandError} from './errors.js'
import {type RemoteFileState, statFiles, statKnown} from './file-stat.js'
import {shq} from './shell.js'
import {
  backupOnceShell,
  backupPath,
  checkRemotePath,
  KFLAN_STATE_DIR,
  listManagedShell,
  needsBackup,
  remoteTempPath,
  statePaths,
} from './state-dir.js'
import {findMember, hashLocalFile, listTarball} from './tarball.js'

/**
 * 'cat': the bytes go on the stdin of `cat > tmp` (run as root: no staging copy).
 * 'sftp': ssh2's fastPut with 64 × 32 KiB requests in flight, as the login user (staged through
 * /tmp and moved by root when that user is not root).
 * Measured on the lab (48 MiB random, after a warm-up, medians of 3): cat 83–90 MB/s, SFTP
 * 57–71 MB/s; both are bound by ssh2's cipher on one core. 'cat' is the default: as fast or
 * faster, and no staging copy for sudo users. The e2e test prints fresh numbers.
 */
export type UploadMethod = 'cat' | 'sftp'
export const DEFAULT_UPLOAD_METHOD: UploadMethod = 'cat'

export interface UploadOptions {
  /** Permission bits of the installed file. Default 0o644. */
  mode?: number
  method?: UploadMethod
  /** Upload even when the remote copy matches (benchmarks). */
  force?: boolean
  dryRun?: boolean
  /** kflan's state dir on the host (cache, managed list, backups). Default /var/lib/kflan. */
  stateDir?: string
}

export interface UploadResult {
  path: string
  result: 'unchanged' | 'uploaded'
  bytes: number
  /** Wall time of the transfer itself (0 when skipped), ms. */
  transferMs: number
  method?: UploadMethod
  /** Transfer throughput, MB/s (10^6 bytes). */
  mbPerSec?: number
  sha256: string
}

const localHashes = new Map<string, {key: string; sha256: string; size: number}>()

/** Local sha256, cached per path + size + mtime. */
export async function localSha256(file: string): Promise<{sha256: string; size: number}> {
  const st = await fsp.stat(file)
  const key = `${st.size}:${st.mtimeMs}`
  const hit = localHashes.get(file)
  if (hit && hit.key === key) return hit
  const h = await hashLocalFile(file)
  localHashes.set(file, {key, ...h})
  return h
}

/** Sends a local file to `remotePath` (atomic: temp file, sha256 verified, rename). */
export async function uploadFile(
  remote: Remote,
  localPath: string,
  remotePath: string,
  opts: UploadOptions = {},
): Promise<UploadResult> {
  checkRemotePath(remotePath)
  const {sha256, size} = await localSha256(localPath)
  const mode = (opts.mode ?? 0o644).toString(8)
  if (!opts.force) {
    const st = (await statFiles(remote, [remotePath], opts)).get(remotePath)!
    if (st.sha256 === sha256 && st.mode === (opts.mode ?? 0o644)) {
      return {path: remotePath, result: 'unchanged', bytes: size, transferMs: 0, sha256}
    }
  }

  if (opts.dryRun) return {path: remotePath, result: 'uploaded', bytes: size, transferMs: 0, sha256}
  const method = opts.method ?? DEFAULT_UPLOAD_METHOD
  const dir = path.posix.dirname(remotePath)
  const tmp = remoteTempPath(remotePath)
  const verifyAndMove = (src: string) =>
    `if [ "$(sha256sum < ${shq(src)} | cut -c1-64)" = ${sha256} ]; then chmod ${mode} ${shq(src)} && mv -f -- ${shq(src)} ${shq(remotePath)}; ` +
    `else rm -f -- ${shq(src)}; echo 'checksum mismatch after upload' >&2; exit 3; fi`
  const t0 = performance.now()
  if (method === 'cat') {
    await remote.run(`mkdir -p -- ${shq(dir)} && (umask 077; cat > ${shq(tmp)}) && ${verifyAndMove(tmp)}`, {
      stdin: createReadStream(localPath),
    })
  } else {
    const staged = remote.mode === 'root' ? tmp : `/tmp/.kflan-upload.${randomBytes(6).toString('hex')}`
    if (remote.mode === 'root') await remote.run(`mkdir -p -- ${shq(dir)}`)
    const sftp = await remote.sftp()
    try {
      await remote.ssh.putFile(localPath, staged, sftp as never, {concurrency: 64, chunkSize: 32_768} as never)
    } catch (error) {
      throw new RemoteCommandError({
        host: remote.name,
        command: `sftp put ${staged}`,
        code: null,
        stderr: (error as Error).message,
        hint: 'Check free space on the host and that SFTP is enabled in sshd_config (Subsystem sftp).',
      })
    }

    await (remote.mode === 'root'
      ? remote.run(verifyAndMove(staged))
      : remote.run(
          `mkdir -p -- ${shq(dir)} && mv -f -- ${shq(staged)} ${shq(tmp)} && chown root:root ${shq(tmp)} && ${verifyAndMove(tmp)}`,
        ))
  }

  const transferMs = performance.now() - t0
  remote.note(
    `uploaded ${localPath} → ${remotePath} (${size} bytes, ${method}, ${Math.round(transferMs)}ms)`,
    'upload',
    {durationMs: transferMs},
  )
  return {
    path: remotePath,
    result: 'uploaded',
    bytes: size,
    transferMs,
    method,
    mbPerSec: size / 1e6 / (transferMs / 1000),
    sha256,
  }
}

/** The host's cache path for a tarball: /var/lib/kflan/cache/<sha256>.<ext>. */
export function cachePathFor(sha256: string, localPath: string, stateDir = KFLAN_STATE_DIR): string {
  const ext = /\.(tar\.gz|tgz|tar\.xz|tar\.bz2|tar)$/.exec(localPath)?.[1] ?? 'bin'
  return `${statePaths(stateDir).cache}/${sha256}.${ext}`
}

/** Uploads a tarball into the host's cache unless it is already there. */
export async function ensureCached(remote: Remote, localPath: string, opts: UploadOptions = {}): Promise<UploadResult> {
  const {sha256} = await localSha256(localPath)
  return uploadFile(remote, localPath, cachePathFor(sha256, localPath, opts.stateDir), {mode: 0o600, ...opts})
}

export interface MemberInstall {
  /** Member name in the tarball, or its unique basename (`etcd`). */
  member: string
  /** Absolute destination path, e.g. /usr/local/bin/etcd. */
  dest: string
  /** Default 0o755. */
  mode?: number
}

export interface InstallResult {
  dest: string
  member: string
  result: 'unchanged' | 'created' | 'updated'
  backup?: string
}

/**
 * Installs members of a local tarball on the host. Round trips: one to compare every
 * destination's sha256 with the member's (computed locally); when something differs, the
 * tarball is uploaded to the cache if missing, and one more extracts the changed members and
 * renames them into place (mode 0755, atomic, original backed up if kflan did not create it).
 */
export async function installFromTarball(
  remote: Remote,
  tarball: string,
  members: MemberInstall[],
  opts: {
    dryRun?: boolean
    method?: UploadMethod
    stateDir?: string
    localCacheDir?: string
    known?: Map<string, RemoteFileState>
  } = {},
): Promise<{results: InstallResult[]; upload?: UploadResult}> {
  const {cache: CACHE_DIR, hashes: HASHES} = statePaths(opts.stateDir)
  const list = await listTarball(tarball, opts.localCacheDir)
  const wanted = members.map((m) => ({...m, mode: m.mode ?? 0o755, entry: findMember(list, m.member)}))
  for (const w of wanted) checkRemotePath(w.dest)
  const states = await statKnown(
    remote,
    wanted.map((w) => w.dest),
    {...opts, quick: true},
  )
  const results: InstallResult[] = []
  const todo: ((typeof wanted)[number] & {created: boolean; backup: boolean})[] = []
  for (const w of wanted) {
    const st = states.get(w.dest)!
    if (st.exists && st.sha256 === w.entry.sha256 && st.mode === w.mode) {
      results.push({dest: w.dest, member: w.entry.name, result: 'unchanged'})
      continue
    }

    const backup = needsBackup(st, w.entry.sha256)
    results.push({
      dest: w.dest,
      member: w.entry.name,
      result: st.exists ? 'updated' : 'created',
      backup: backup ? backupPath(w.dest, opts.stateDir) : undefined,
    })
    todo.push({...w, created: !st.exists, backup})
  }

  if (todo.length === 0 || opts.dryRun) return {results}

  const upload = await ensureCached(remote, tarball, {method: opts.method, stateDir: opts.stateDir})
  const cache = upload.path
  const flag = /\.(tar\.gz|tgz)$/.test(cache) ? 'z' : ''
  const lines = [
    'umask 022',
    `x=$(mktemp -d ${CACHE_DIR}/extract.XXXXXX) || exit 1`,
    `trap 'rm -rf "$x"' EXIT`,
    `tar -x${flag}f ${shq(cache)} -C "$x" -- ${[...new Set(todo.map((t) => t.entry.name))].map(shq).join(' ')} || exit 1`,
  ]
  for (const t of todo) {
    const src = `"$x"/${shq(t.entry.name)}`
    const d = path.posix.dirname(t.dest)
    const tmp = remoteTempPath(t.dest)
    lines.push(
      `[ "$(sha256sum < ${src} | cut -c1-64)" = ${t.entry.sha256} ] || { echo ${shq(`${t.entry.name}: checksum mismatch after extract`)} >&2; exit 3; }`,
      `mkdir -p -- ${shq(d)} || exit 1`,
    )
    if (t.backup) {
      lines.push(backupOnceShell({file: shq(t.dest), dir: shq(d), stateDir: opts.stateDir, orElse: 'exit 1'}))
    }

    lines.push(
      `cp -- ${src} ${shq(tmp)} && chmod ${t.mode.toString(8)} ${shq(tmp)} && chown root:root ${shq(tmp)} && mv -f -- ${shq(tmp)} ${shq(t.dest)} || { rm -f -- ${shq(tmp)}; exit 1; }`,
    )
    if (t.created) lines.push(listManagedShell(shq(t.dest), opts.stateDir))
    // Record size, mtime and sha256 for the next run's quick check (statScript's `quick`).
    if (!/\s/.test(t.dest)) {
      lines.push(
        `set -- $(stat -c '%s %Y' -- ${shq(t.dest)}) && { awk -v p=${shq(t.dest)} '$1!=p' ${HASHES} 2>/dev/null; echo ${shq(t.dest)} "$1" "$2" ${t.entry.sha256}; } > ${remoteTempPath(HASHES)} && mv -f ${remoteTempPath(HASHES)} ${HASHES}`,
      )
    }
  }

  await remote.run('sh -s', {stdin: `${lines.join('\n')}\n`})
  return {results, upload}
}
