/**
 * The command log: every remote command with its exit code, duration and output, secrets
 * redacted before anything reaches a logger.
 */
import {appendFileSync, chmodSync, closeSync, mkdirSync, openSync} from 'node:fs'
import path from 'node:path'

export type LogKind = 'connect' | 'exec' | 'upload' | 'hostkey' | 'close' | 'note'

export interface LogEntry {
  /** ISO timestamp of the start. */
  ts: string
  kind: LogKind
  /** The command as sent (sudo wrapping included), redacted. */
  command?: string
  /** Whether it ran through sudo. */
  sudo?: boolean
  code?: number | null
  durationMs?: number
  /** Output, redacted and truncated. */
  stdout?: string
  stderr?: string
  /** Bytes sent on stdin (its content is never logged). */
  stdinBytes?: number
  /** Free text: connect details, host key verdicts, errors. */
  message?: string
}

export interface Logger {
  log(host: string, entry: LogEntry): void
}

export const nullLogger: Logger = {log() {}}

/** Keeps entries in memory; for tests and for callers that render their own report. */
export class MemoryLogger implements Logger {
  readonly entries: {host: string; entry: LogEntry}[] = []

  log(host: string, entry: LogEntry): void {
    this.entries.push({host, entry})
  }
}

export const REDACTED = '***'

/**
 * Replaces every occurrence of the registered secrets with `***`. Secrets shorter than 3
 * characters are ignored (they would redact ordinary text and protect nothing).
 */
export class Redactor {
  private secrets: string[] = []

  constructor(secrets: Iterable<string | undefined> = []) {
    for (const s of secrets) this.add(s)
  }

  add(secret: string | undefined): void {
    if (!secret || secret.length < 3 || this.secrets.includes(secret)) return
    this.secrets.push(secret)
    // Longest first, so a secret containing another is redacted whole.
    this.secrets.sort((a, b) => b.length - a.length)
  }

  redact(text: string, extra: readonly string[] = []): string {
    let out = text
    const all =
      extra.length > 0
        ? [...extra.filter((s) => s && s.length >= 3), ...this.secrets].sort((a, b) => b.length - a.length)
        : this.secrets
    for (const s of all) if (out.includes(s)) out = out.split(s).join(REDACTED)
    return out
  }
}

/** Truncates long output for the log, keeping head and tail. */
export function truncateForLog(s: string, max = 8192): string {
  if (s.length <= max) return s
  const half = Math.floor(max / 2)
  return `${s.slice(0, half)}\n... (${s.length - max} chars omitted) ...\n${s.slice(-half)}`
}

/** Renders an entry as one readable line plus indented output. */
export function formatLogEntry(host: string, e: LogEntry): string {
  const head = [e.ts, host, e.kind]
  if (e.code !== undefined) head.push(`rc=${e.code === null ? '-' : e.code}`)
  if (e.durationMs !== undefined) head.push(`${Math.round(e.durationMs)}ms`)
  if (e.sudo) head.push('sudo')
  if (e.stdinBytes) head.push(`stdin=${e.stdinBytes}B`)
  let out = head.join(' ')
  if (e.command !== undefined) out += ` $ ${e.command}`
  if (e.message) out += ` # ${e.message}`
  out += '\n'
  const indent = (label: string, s: string) =>
    s
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => `    ${label}| ${l}`)
      .join('\n') + '\n'
  if (e.stdout) out += indent('out', e.stdout)
  if (e.stderr) out += indent('err', e.stderr)
  return out
}

/**
 * Appends entries to a file (created with mode 0600): JSON lines by default, or readable text.
 * Writes are synchronous so the log is complete even when the process dies mid-run.
 */
export class FileLogger implements Logger {
  private fd: number | undefined

  constructor(
    readonly file: string,
    private readonly format: 'jsonl' | 'text' = 'jsonl',
  ) {}

  log(host: string, entry: LogEntry): void {
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), {recursive: true, mode: 0o700})
      this.fd = openSync(this.file, 'a', 0o600)
      chmodSync(this.file, 0o600)
    }

    const line = this.format === 'jsonl' ? `${JSON.stringify({host, ...entry})}\n` : formatLogEntry(host, entry)
    appendFileSync(this.fd, line)
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }
}
