/**
 * What reset does with the files kflan wrote (pure): the kinds of file operation, the directories
 * it never removes, undoing kflan's own edits of text files, and how an operation reads in the
 * report. The plan (plan.ts) decides which operation each file gets.
 */
import {HOSTS_BEGIN, HOSTS_END} from '../render/index.js'
import {SYSTEMD_DIR} from '../render/paths.js'

/**
 * remove: kflan created it (listed in /var/lib/kflan/managed): delete.
 * restore: kflan overwrote it: put the backup back, byte for byte.
 * rewrite: kflan edited it and it was edited again since: undo only kflan's edit, keep the rest.
 * forget: listed as created by kflan but already gone: drop it from the list.
 */
export type FileAction = 'remove' | 'restore' | 'rewrite' | 'forget'

export interface FileOp {
  path: string
  action: FileAction
  /** rewrite: the new content and the file's current mode. */
  content?: Buffer
  mode?: number
}

/** Files kflan edits as text (preflight): later edits by others can be kept. */
export const TEXT_EDITED = ['/etc/hosts', '/etc/fstab', '/etc/selinux/config']

/** Directories never removed, even when empty. */
const PROTECTED = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/etc/systemd',
  '/home',
  '/lib',
  '/lib64',
  '/lib/systemd',
  '/lib/systemd/system',
  '/opt',
  '/opt/bin',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/lib',
  '/usr/lib/systemd',
  '/usr/lib/systemd/system',
  '/usr/local',
  '/usr/local/bin',
  '/usr/local/lib',
  '/usr/local/sbin',
  '/usr/sbin',
  '/usr/share',
  '/var',
  '/var/lib',
  '/var/log',
  '/var/run',
  SYSTEMD_DIR,
])

/** A directory kflan may remove when it is empty: not a system directory. */
export function removableDir(d: string): boolean {
  return d.startsWith('/') && !PROTECTED.has(d.replace(/\/+$/, '')) && d.split('/').filter(Boolean).length >= 2
}

/**
 * Undoes kflan's own edit of a text file and keeps everything else (pure): the hosts block, the
 * swap lines kflan commented out, SELINUX= back to the original's value. undefined: not a file
 * kflan edits as text.
 */
export function undoTextEdit(path: string, current: string, original: string): string | undefined {
  if (path === '/etc/hosts') {
    const start = current.indexOf(HOSTS_BEGIN)
    const end = current.indexOf(HOSTS_END)
    if (start === -1 || end < start) return current
    return current.slice(0, start) + current.slice(end + HOSTS_END.length).replace(/^\n/, '')
  }

  if (path === '/etc/fstab') {
    return current
      .split('\n')
      .map((l) => /^# (.*) # disabled by kflan$/.exec(l)?.[1] ?? l)
      .join('\n')
  }

  if (path === '/etc/selinux/config') {
    const orig = /^SELINUX=.*$/m.exec(original)?.[0]
    if (orig !== undefined) return current.replace(/^SELINUX=.*$/m, orig)
    return current.replace(/^SELINUX=disabled\n?/m, '')
  }

  return undefined
}

/** kflan appends its hosts block after adding a missing final newline: that newline is kflan's too. */
export function sameText(undone: string, original: string): boolean {
  return undone === original || undone === `${original}\n`
}

/** How a file op reads in the report. */
export function describeFileOp(o: FileOp): string {
  switch (o.action) {
    case 'forget': {
      return `forget ${o.path} (already gone)`
    }

    case 'remove': {
      return `remove ${o.path}`
    }

    case 'restore': {
      return `restore ${o.path} from its backup`
    }

    case 'rewrite': {
      return `take kflan's edit out of ${o.path} (edited since kflan changed it: later edits kept)`
    }
  }
}
