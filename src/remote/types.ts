/**
 * The SSH layer's shared types: what a connection target is, the options of a connection and of a
 * command, a command's result, and the minimal shapes of the ssh2 objects kflan drives directly.
 */
import type {Readable} from 'node:stream'

import type {BastionPool} from './bastion.js'
import type {Logger} from './logger.js'

export interface BastionSpec {
  address: string
  port: number
  user: string
  identityFile?: string
  password?: string
  useAgent?: boolean
  hostKey?: string
}

export interface TargetSpec {
  /** Inventory name; used in messages and logs. */
  name: string
  address: string
  port: number
  user: string
  identityFile?: string
  password?: string
  sudoPassword?: string
  useAgent?: boolean
  bastion?: BastionSpec
  /** Expected host key fingerprint (`SHA256:…`) from the inventory. */
  hostKey?: string
}

export interface ConnectOptions {
  /** kflan's known_hosts file (in the cluster state dir). */
  knownHostsPath: string
  /** Trust and record host keys of hosts never seen before (trust on first use). */
  acceptNew?: boolean
  logger?: Logger
  /** TCP connect + SSH handshake + authentication must finish within this. Default 8000. */
  connectTimeoutMs?: number
  /** SSH keepalive interval; the connection is dropped after 3 unanswered. Default 10000. */
  keepaliveIntervalMs?: number
  /** ssh-agent socket; default $SSH_AUTH_SOCK. */
  agentSocket?: string
  /** Extra strings to redact from logs. */
  secrets?: string[]
  /** Shares bastion connections between targets (the connect phase makes one; without it, each target opens its own). */
  bastionPool?: BastionPool
  /** Concurrent command channels per connection (OpenSSH's MaxSessions defaults to 10, SFTP takes one). Default 8. */
  maxChannels?: number
}

export interface ExecOptions {
  /** Run as root (via sudo when the login user is not root). Default true. */
  sudo?: boolean
  /** Sent on stdin (then EOF). Never logged, only its size. */
  stdin?: string | Buffer | Readable
  /** Kill the command after this long. Default: no limit. */
  timeoutMs?: number
  /** Exit codes `run()` accepts. Default [0]. */
  okCodes?: number[]
  /** Extra strings to redact from this command's log entry. */
  secrets?: string[]
  /** false: log the command and code but not its output (it contains secrets). Default true. */
  logOutput?: boolean
}

export interface ExecResult {
  /** Exit code; null when killed by a signal or timed out. */
  code: number | null
  stdout: string
  stderr: string
  durationMs: number
  signal?: string
  timedOut?: boolean
}

export interface HostKeyInfo {
  fingerprint: string
  keyType: string
  /** How it was trusted: already known, matched the inventory pin (repinned: in place of an older recorded key), or accepted as new. */
  action: 'known' | 'pinned' | 'repinned' | 'accept-new'
}

/* eslint-disable @typescript-eslint/no-explicit-any -- ssh2's event callbacks take per-event arguments it does not type */
/** Minimal shape of the ssh2 objects we use (ssh2 ships no types and @types/ssh2 is not installed). */
export interface Ssh2Channel {
  write(data: string | Buffer): boolean
  end(data?: string | Buffer): void
  on(event: string, fn: (...args: any[]) => void): Ssh2Channel
  once(event: string, fn: (...args: any[]) => void): Ssh2Channel
  stderr: {on(event: 'data', fn: (d: Buffer) => void): void}
  signal(name: string): void
  close(): void
}
export interface Ssh2Client {
  exec(cmd: string, cb: (err: Error | undefined, ch: Ssh2Channel) => void): boolean
  on(event: string, fn: (...args: any[]) => void): void
  removeListener(event: string, fn: (...args: any[]) => void): void
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** What one SSH hop needs: a target or a bastion, with the label used in messages. */
export type Endpoint = BastionSpec & {label: string}
