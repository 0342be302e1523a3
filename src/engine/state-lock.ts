/**
 * One kflan run at a time per state directory (init, join node, reset, render: everything that
 * writes the PKI, known_hosts or the hosts). The lock is `<state dir>/lock`, JSON with the
 * holder's PID, host name, command line, start time and process start tick.
 *
 * Decision: a second run refuses at once (exit 1, naming the holder) rather than waiting: an init
 * can take minutes, and a second operator waiting silently behind it would then re-apply an
 * inventory that may be older than what the first run just rolled out. Run it again when the
 * first one is done.
 *
 * A lock whose holder is gone (same machine, that PID not running, or running but started at
 * another time: a reused PID) is stale and taken over, with a message. A lock held from another
 * machine (a state dir on a shared filesystem) cannot be checked and is never taken over.
 * doctor and validate only read, and take no lock.
 */
import {linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {InputError, KflanError} from '../errors.js'

export interface LockInfo {
  pid: number
  host: string
  command: string
  started: string
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), when readable. */
  procStart?: string
}

export function lockPath(stateDir: string): string {
  return join(stateDir, 'lock')
}

/** A process's start tick from /proc, or undefined where there is no /proc. */
export function procStartOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm (field 2) may contain spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Whether the holder of `info` still runs, seen from this machine (pure but for the probes). */
export function lockState(
  info: LockInfo,
  // eslint-disable-next-line unicorn/no-object-as-default-parameter -- the real /proc probes; tests pass their own
  probes = {host: hostname(), alive, procStartOf},
): 'held' | 'stale' | 'foreign' {
  if (info.host !== probes.host) return 'foreign'
  if (!Number.isInteger(info.pid) || info.pid <= 0 || !probes.alive(info.pid)) return 'stale'
  const start = probes.procStartOf(info.pid)
  if (info.procStart !== undefined && start !== undefined && start !== info.procStart) return 'stale'
  return 'held'
}

function readLock(file: string): LockInfo | undefined {
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as LockInfo
    return typeof j.pid === 'number' ? j : undefined
  } catch {
    return undefined
  }
}

export function describeHolder(i: LockInfo): string {
  return `PID ${i.pid} on ${i.host} (\`${i.command}\`, started ${i.started})`
}

export interface StateLock {
  file: string
  /** The stale lock that was taken over, if any (the caller says so). */
  tookOver?: LockInfo
  release(): void
}

/**
 * Takes the state dir's lock or throws KflanError naming its holder. The lock file appears whole
 * or not at all (written aside, then hard-linked into place, which fails if it exists). It is
 * released by `release()` and, whatever happens, when the process exits.
 */
export function acquireStateLock(stateDir: string, command: string): StateLock {
  try {
    return takeLock(stateDir, command)
  } catch (error) {
    if (error instanceof KflanError) throw error
    const e = error as NodeJS.ErrnoException
    throw new InputError(
      `cannot lock the state directory ${stateDir}: ${e.code ?? ''} ${e.message}`.replaceAll(/\s+/g, ' '),
      {
        hint: 'the state directory (--state-dir, default ./.kflan/<cluster>) must be a writable directory',
      },
    )
  }
}

function takeLock(stateDir: string, command: string): StateLock {
  mkdirSync(stateDir, {recursive: true, mode: 0o700})
  const file = lockPath(stateDir)
  const me: LockInfo = {
    pid: process.pid,
    host: hostname(),
    command,
    started: new Date().toISOString(),
    procStart: procStartOf(process.pid),
  }
  const text = `${JSON.stringify(me)}\n`
  const tmp = `${file}.${process.pid}.tmp`
  let tookOver: LockInfo | undefined
  for (let attempt = 0; ; attempt++) {
    writeFileSync(tmp, text, {mode: 0o600})
    try {
      linkSync(tmp, file)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error
    } finally {
      rmSync(tmp, {force: true})
    }

    const holder = readLock(file)
    const state = holder ? lockState(holder) : 'stale'
    if (state === 'held' || state === 'foreign') {
      throw new KflanError(`another kflan run holds the state directory ${stateDir}: ${describeHolder(holder!)}`, {
        hint:
          state === 'held'
            ? 'wait for it to finish (kflan never runs two changes against one cluster at once), then run this again'
            : `that run is on another machine and cannot be checked from here; if it is over, delete ${file}`,
      })
    }

    tookOver = holder ?? {pid: 0, host: '?', command: '(unreadable lock file)', started: '?'}
    // Stale: take it over. Another run taking it over at the same moment makes our link fail again.
    unlinkSync(file)
  }

  let released = false
  const release = () => {
    if (released) return
    released = true
    process.removeListener('exit', release)
    // Only our own lock: never delete one a later run took over.
    if (readLock(file)?.pid === process.pid) rmSync(file, {force: true})
  }

  process.on('exit', release)
  return {file, tookOver, release}
}
