/**
 * `Remote`: one SSH connection per host, reused by every phase, running commands as root (directly,
 * via `sudo -n`, or via `sudo -S` with the password on stdin), every command logged with secrets
 * redacted. The pieces it is built from: types.ts (targets, options, results), connect.ts (one
 * authenticated hop, host key checked), bastion.ts (shared jump hosts), channels.ts (a command on
 * a session channel), target.ts (a target from an inventory host).
 */
import type {NodeSSH} from 'node-ssh'

import {performance} from 'node:perf_hooks'

import type {ConnectOptions, ExecOptions, ExecResult, HostKeyInfo, Ssh2Client, TargetSpec} from './types.js'

import {BastionPool, type Tunnel} from './bastion.js'
import {type ChannelSource, execOnChannel, isChannelRefusal, Semaphore, type WrappedCommand} from './channels.js'
import {classifyConnectError} from './connect-errors.js'
import {openSsh} from './connect.js'
import {AuthError, RemoteCommandError, RemoteError, trimOutput, UnreachableHostError} from './errors.js'
import {type LogEntry, type Logger, nullLogger, Redactor, truncateForLog} from './logger.js'
import {type PrivilegeMode, sudoFailure, wrapCommand} from './shell.js'

export type {BastionSpec, ConnectOptions, ExecOptions, ExecResult, HostKeyInfo, TargetSpec} from './types.js'

export class Remote {
  private _mode: PrivilegeMode
  readonly hostKey: HostKeyInfo
  /** Time to connect (TCP + handshake + auth), ms. */
  readonly connectMs: number
  private readonly redactor: Redactor
  private readonly logger: Logger
  private readonly channels: ChannelSource
  private readonly releaseBastion?: () => void
  private closed = false
  private sftpPromise: Promise<unknown> | undefined
  /** Fastest round trip seen for a command, ms: an estimate of the link's latency. */
  minExecMs = Number.POSITIVE_INFINITY
  execCount = 0

  /** The host's connection is gone (closed, reset): the host is unreachable, not the command wrong. */
  private connectionClosed(detail: string, cause?: unknown): UnreachableHostError {
    const {address, port, user} = this.target
    return new UnreachableHostError({
      host: this.name,
      address,
      port,
      user,
      reason: 'closed',
      detail,
      ...(cause === undefined ? {} : {cause}),
    })
  }

  private constructor(
    readonly target: TargetSpec,
    /** The underlying node-ssh connection (for SFTP and forwarding). */
    readonly ssh: NodeSSH,
    init: {
      mode: PrivilegeMode
      hostKey: HostKeyInfo
      connectMs: number
      logger: Logger
      redactor: Redactor
      maxChannels: number
      release?: () => void
    },
  ) {
    this._mode = init.mode
    this.hostKey = init.hostKey
    this.connectMs = init.connectMs
    this.logger = init.logger
    this.redactor = init.redactor
    this.channels = {
      slots: new Semaphore(init.maxChannels),
      connection: () =>
        this.closed ? undefined : ((this.ssh.connection as unknown as Ssh2Client | null) ?? undefined),
      closedError: (detail) => this.connectionClosed(detail),
    }
    this.releaseBastion = init.release
    const conn = ssh.connection as unknown as Ssh2Client | null
    conn?.on('close', () => {
      this.closed = true
    })
  }

  /** Privilege mode found at connect: root login, `sudo -n`, or sudo with password on stdin. */
  get mode(): PrivilegeMode {
    return this._mode
  }

  get name(): string {
    return this.target.name
  }

  /** Connects, verifies the host key, and works out how to become root. Throws a RemoteError. */
  static async connect(target: TargetSpec, opts: ConnectOptions): Promise<Remote> {
    const logger = opts.logger ?? nullLogger
    const redactor = new Redactor([
      target.password,
      target.sudoPassword,
      target.bastion?.password,
      ...(opts.secrets ?? []),
    ])
    let tunnel: Tunnel | undefined
    if (target.bastion) {
      const pool = opts.bastionPool ?? new BastionPool()
      tunnel = await pool.tunnel({...target, bastion: target.bastion}, opts)
    }

    let opened: Awaited<ReturnType<typeof openSsh>>
    try {
      opened = await openSsh({label: target.name, ...target}, opts, tunnel?.sock, tunnel?.via)
    } catch (error) {
      tunnel?.release()
      throw error
    }

    let mode: PrivilegeMode =
      target.user === 'root' ? 'root' : target.sudoPassword === undefined ? 'sudo' : 'sudo-password'
    const remote = new Remote(target, opened.ssh, {
      mode,
      hostKey: opened.hostKey,
      connectMs: opened.connectMs,
      logger,
      redactor,
      maxChannels: opts.maxChannels ?? 8,
      release: tunnel?.release,
    })
    if (mode === 'sudo-password') {
      // One round trip: passwordless sudo wins (so the password never reaches a command's stdin);
      // otherwise check the password now rather than in the middle of a phase.
      const probe = `if sudo -n true 2>/dev/null; then echo NOPASSWD; else sudo -k -S -p '' true && echo PASSWORD; fi`
      const r = await remote.execWrapped(
        {command: probe, stdinPrefix: `${target.sudoPassword}\n`, sudo: true},
        {logOutput: true},
      )
      if (r.stdout.includes('NOPASSWD')) mode = 'sudo'
      else if (!r.stdout.includes('PASSWORD')) {
        await remote.close()
        const f = sudoFailure(r.stderr, 'sudo-password', target.user) ?? {
          message: `sudo failed for ${target.user}: ${trimOutput(r.stderr)}`,
          hint: 'Check the sudo password and the sudoers entry for this user.',
        }
        throw new AuthError(target.name, f.message, f.hint)
      }

      remote._mode = mode
    }

    return remote
  }

  /** Registers a string to redact from every later log entry of this connection. */
  addSecret(secret: string): void {
    this.redactor.add(secret)
  }

  redact(text: string): string {
    return this.redactor.redact(text)
  }

  /** Runs a command; never throws for a non-zero exit (see `run`). */
  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const asRoot = opts.sudo ?? true
    const wrapped = wrapCommand(cmd, {asRoot, mode: this.mode, sudoPassword: this.target.sudoPassword})
    const r = await this.execWrapped(wrapped, opts, cmd)
    if (wrapped.sudo && (r.code === 1 || r.code === 127)) {
      // sudo's own refusal is the first thing on stderr; the command never ran.
      const f = sudoFailure(r.stderr.split('\n').slice(0, 2).join('\n'), this.mode, this.target.user)
      if (f) throw new AuthError(this.name, f.message, f.hint)
    }

    return r
  }

  /** Runs a command and throws RemoteCommandError unless its exit code is in okCodes (default 0). */
  async run(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.exec(cmd, opts)
    const ok = opts.okCodes ?? [0]
    if (r.code === null || !ok.includes(r.code)) {
      throw new RemoteCommandError({
        host: this.name,
        command: this.redactor.redact(cmd, opts.secrets),
        code: r.code,
        stderr:
          opts.logOutput === false
            ? '(output not shown: it may contain secrets)'
            : this.redactor.redact(r.stderr, opts.secrets),
        stdout: opts.logOutput === false ? '' : this.redactor.redact(r.stdout, opts.secrets),
        timedOut: r.timedOut,
      })
    }

    return r
  }

  /** Runs an already-wrapped command line over a new channel. */
  private async execWrapped(
    w: WrappedCommand & {sudo: boolean},
    opts: ExecOptions,
    shown = w.command,
  ): Promise<ExecResult> {
    const ts = new Date().toISOString()
    const t0 = performance.now()
    let stdinBytes = 0
    let result: ExecResult
    try {
      result = await execOnChannel(this.channels, w, opts, {
        t0,
        countStdin(n) {
          stdinBytes += n
        },
      })
    } catch (error) {
      this.logger.log(this.name, {
        ts,
        kind: 'exec',
        command: this.redactor.redact(shown, opts.secrets),
        sudo: w.sudo,
        code: null,
        durationMs: performance.now() - t0,
        message: `failed: ${(error as Error).message}`,
      })
      if (error instanceof RemoteError) throw error
      if (/No response from server|Not connected|socket|ECONNRESET|EPIPE/i.test((error as Error).message ?? '')) {
        throw this.connectionClosed(
          `connection lost during \`${this.redactor.redact(shown, opts.secrets).slice(0, 80)}\``,
          error,
        )
      }

      if (isChannelRefusal(error)) {
        throw new RemoteCommandError({
          host: this.name,
          command: this.redactor.redact(shown, opts.secrets),
          code: null,
          stderr: (error as Error).message,
          hint: 'sshd kept refusing a new session channel (MaxSessions?). Re-run; if it persists, raise MaxSessions in sshd_config.',
        })
      }

      throw classifyConnectError(error, {...this.target, label: this.target.name, name: this.target.name, timeoutMs: 0})
    }

    this.execCount++
    if (result.durationMs < this.minExecMs) this.minExecMs = result.durationMs
    // Output that may hold secrets is replaced by a marker (empty output stays empty).
    const shownOutput = (text: string) =>
      opts.logOutput === false
        ? text && '(not logged: secret)'
        : truncateForLog(this.redactor.redact(text, opts.secrets))
    this.logger.log(this.name, {
      ts,
      kind: 'exec',
      command: this.redactor.redact(shown, opts.secrets),
      sudo: w.sudo,
      code: result.code,
      durationMs: result.durationMs,
      stdinBytes: stdinBytes || undefined,
      stdout: shownOutput(result.stdout),
      stderr: shownOutput(result.stderr),
      message: result.timedOut
        ? `timed out after ${opts.timeoutMs}ms`
        : result.signal
          ? `killed by ${result.signal}`
          : undefined,
    })
    return result
  }

  /** The connection's SFTP session (one, shared). Runs as the login user, not root. */
  async sftp(): Promise<unknown> {
    if (!this.sftpPromise) {
      this.sftpPromise = this.ssh.requestSFTP()
      this.sftpPromise.catch(() => {
        this.sftpPromise = undefined
      })
    }

    return this.sftpPromise
  }

  /** Logs a note attributed to this host (phases use it for their own events). */
  note(message: string, kind: LogEntry['kind'] = 'note', extra: Partial<LogEntry> = {}): void {
    this.logger.log(this.name, {ts: new Date().toISOString(), kind, message: this.redactor.redact(message), ...extra})
  }

  get isConnected(): boolean {
    return !this.closed && this.ssh.isConnected()
  }

  async close(): Promise<void> {
    if (this.closed && !this.ssh.connection) {
      this.releaseBastion?.()
      return
    }

    this.closed = true
    this.ssh.dispose()
    this.releaseBastion?.()
    this.logger.log(this.name, {ts: new Date().toISOString(), kind: 'close'})
  }
}

export async function closeAll(remotes: Iterable<Remote>): Promise<void> {
  await Promise.all([...remotes].map((r) => r.close()))
}
