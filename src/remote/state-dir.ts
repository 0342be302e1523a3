/**
 * kflan's bookkeeping on each host, and what every remote write shares:
 *   /var/lib/kflan/managed           absolute paths of files kflan created (one per line)
 *   /var/lib/kflan/backup/<abs path> the original of a file kflan overwrote but did not create
 *   /var/lib/kflan/cache             uploaded tarballs; /var/lib/kflan/hashes the installed binaries' hashes
 * plus the run's temp file names, path checks, and the shell steps that back up an original and
 * list a created file (used by file writes and by binary installs alike).
 */
import {createHash, randomBytes} from 'node:crypto'

import type {RemoteFileState} from './file-stat.js'

import {shq} from './shell.js'

export const KFLAN_STATE_DIR = '/var/lib/kflan'

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

/**
 * Whether writing new content over a file backs up its original first: it exists, its content
 * changes, and kflan did not create it (a managed file has no original to keep).
 */
export function needsBackup(st: RemoteFileState, newSha256: string | undefined): boolean {
  return st.exists && !st.managed && st.sha256 !== newSha256
}

/** Where the original of `file` is kept. */
export function backupPath(file: string, stateDir = KFLAN_STATE_DIR): string {
  return `${statePaths(stateDir).backup}${file}`
}

/**
 * Shell: copies the original of `file` (a shell word, quoted or `"$1"`) in `dir` to the backup tree,
 * once; `orElse` runs when the copy fails. The tree is private to root: backups may hold secrets.
 */
export function backupOnceShell(o: {
  file: string
  dir: string
  stateDir?: string
  when?: string
  orElse: string
}): string {
  const b = shq(statePaths(o.stateDir).backup)
  const when = o.when ? `${o.when} && ` : ''
  return `if ${when}[ -e ${o.file} ] && [ ! -e ${b}${o.file} ]; then (umask 077; mkdir -p -- ${b}${o.dir}) && cp -pP -- ${o.file} ${b}${o.file} || ${o.orElse}; fi`
}

/** Shell: adds `file` (a shell word) to the managed list unless it is listed already. */
export function listManagedShell(file: string, stateDir?: string): string {
  const {managed} = statePaths(stateDir)
  return `{ grep -qxF -- ${file} ${managed} 2>/dev/null || printf '%s\\n' ${file} >> ${managed}; }`
}
