import type {Readable} from 'node:stream'

import {NodeSSH} from 'node-ssh'
/**
 * One SSH connection per host, reused by every phase: connect (key file, ssh-agent, password;
 * custom port; bastion), host key verification, and command execution as root (directly, via
 * `sudo -n`, or via `sudo -S` with the password on stdin), every command logged with secrets
 * redacted.
 */
import {promises as fsp} from 'node:fs'
import {performance} from 'node:perf_hooks'
import {setTimeout as sleep} from 'node:timers/promises'

import type {Host} from '../inventory/model.js'

import {AuthError, HostKeyError, RemoteCommandError, RemoteError, trimOutput, UnreachableHostError} from './errors.js'
import {
  decideHostKey,
  hostKeyAlgorithmsFor,
  type HostKeyDecision,
  hostKeyError,
  knownHostId,
  readKnownHosts,
  recordHostKey,
} from './hostkeys.js'
import {type LogEntry, type Logger, nullLogger, Redactor, truncateForLog} from './logger.js'
import {type PrivilegeMode, shq, sudoFailure, wrapCommand} from './shell.js'

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
  /** Shares bastion connections between targets (connectAll makes one). */
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
interface Ssh2Channel {
  write(data: string | Buffer): boolean
  end(data?: string | Buffer): void
  on(event: string, fn: (...args: any[]) => void): Ssh2Channel
  once(event: string, fn: (...args: any[]) => void): Ssh2Channel
  stderr: {on(event: 'data', fn: (d: Buffer) => void): void}
  signal(name: string): void
  close(): void
}
interface Ssh2Client {
  exec(cmd: string, cb: (err: Error | undefined, ch: Ssh2Channel) => void): boolean
  on(event: string, fn: (...args: any[]) => void): void
  removeListener(event: string, fn: (...args: any[]) => void): void
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** What one SSH hop needs: a target or a bastion, with the label used in messages. */
type Endpoint = BastionSpec & {label: string}

const DEFAULT_CONNECT_TIMEOUT = 8000

/** A small counting semaphore: keeps concurrent channels under sshd's MaxSessions. */
class Semaphore {
  private waiting: (() => void)[] = []
  private active = 0

  constructor(private readonly max: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.max)
      await new Promise<void>((r) => {
        this.waiting.push(r)
      })
    this.active++
    return () => {
      this.active--
      this.waiting.shift()?.()
    }
  }
}

/** Turns whatever ssh2 / node-ssh threw during connect into one of our typed errors. */
export function classifyConnectError(
  err: unknown,
  ep: Endpoint & {name: string; via?: string; timeoutMs: number},
): RemoteError {
  if (err instanceof RemoteError) return err
  const e = err as {message?: string; level?: string; code?: string}
  const msg = e?.message ?? String(err)
  const base = {host: ep.name, address: ep.address, port: ep.port, user: ep.user, via: ep.via, cause: err}
  if (e?.level === 'client-authentication') {
    const methods = [
      ep.identityFile && `key ${ep.identityFile}`,
      ep.useAgent && 'ssh-agent',
      ep.password !== undefined && 'password',
    ]
      .filter(Boolean)
      .join(', ')
    return new AuthError(
      ep.name,
      `authentication as ${ep.user}@${ep.address}:${ep.port} failed (tried: ${methods || 'nothing: no key, agent or password configured'})`,
      `Check the user and that its key is in ~${ep.user}/.ssh/authorized_keys on the host: try \`ssh ${ep.identityFile ? `-i ${ep.identityFile} ` : ''}-p ${ep.port} ${ep.user}@${ep.address}\`.`,
      err,
    )
  }

  if (
    /encrypted private key|passphrase|cannot parse privatekey|unsupported key format|no valid private key/i.test(msg)
  ) {
    return new AuthError(
      ep.name,
      `cannot use identity file ${ep.identityFile ?? ''}: ${msg}`,
      'kflan cannot read passphrase-protected keys: load the key into ssh-agent (`ssh-add KEY`) and enable ssh.agent in the inventory, or use an unencrypted key.',
      err,
    )
  }

  if (e?.level === 'client-timeout' || /timed out/i.test(msg)) {
    return new UnreachableHostError({
      ...base,
      reason: 'timeout',
      detail: `no SSH answer within ${Math.round(ep.timeoutMs / 1000)}s`,
    })
  }

  const code = e?.code ?? /\b(E[A-Z]{3,})\b/.exec(msg)?.[1]
  if (
    code &&
    /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|ECONNRESET|EPIPE|EADDRNOTAVAIL)$/.test(code)
  ) {
    const detail =
      code === 'ECONNREFUSED'
        ? 'connection refused (port closed)'
        : code === 'ENOTFOUND'
          ? 'unknown host name'
          : code === 'EHOSTUNREACH'
            ? 'no route to host'
            : `${code}`
    return new UnreachableHostError({...base, reason: code, detail})
  }

  if (/No response from server|Not connected|connection (lost|closed)/i.test(msg)) {
    return new UnreachableHostError({...base, reason: 'closed', detail: 'connection closed before SSH was ready'})
  }

  if (/open failed|Channel open failure|administratively prohibited|Connection refused/i.test(msg)) {
    // forwardOut through a bastion: the bastion could not open the TCP connection.
    return new UnreachableHostError({
      ...base,
      reason: /refused/i.test(msg) ? 'ECONNREFUSED' : 'forward',
      detail: `bastion could not connect: ${msg}`,
    })
  }

  if (e?.level === 'handshake' || e?.level === 'protocol' || /handshake|no matching/i.test(msg)) {
    return new UnreachableHostError({...base, reason: 'handshake', detail: msg})
  }

  return new UnreachableHostError({...base, reason: 'error', detail: msg})
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms)
    }),
  ])
}

/**
 * Opens one authenticated SSH connection with host key verification. `sock` is a forwarded
 * channel when going through a bastion.
 */
async function openSsh(
  ep: Endpoint,
  opts: ConnectOptions,
  sock?: unknown,
  via?: string,
): Promise<{ssh: NodeSSH; hostKey: HostKeyInfo; connectMs: number}> {
  const logger = opts.logger ?? nullLogger
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT
  const t0 = performance.now()
  const ts = new Date().toISOString()
  const ctx = {...ep, name: ep.label, via, timeoutMs}
  const entries = await readKnownHosts(opts.knownHostsPath)
  const hostId = knownHostId(ep.address, ep.port)
  let accepted: (Extract<HostKeyDecision, {ok: true}> & {key: Buffer}) | undefined
  let refusal: HostKeyError | undefined

  let privateKey: string | undefined
  if (ep.identityFile) {
    try {
      privateKey = await fsp.readFile(ep.identityFile, 'utf8')
    } catch (error) {
      throw new AuthError(
        ep.label,
        `cannot read identity file ${ep.identityFile}: ${(error as Error).message}`,
        'Check ssh.identityFile in the inventory (a path on this machine).',
        error,
      )
    }
  }

  const agent = ep.useAgent ? (opts.agentSocket ?? process.env.SSH_AUTH_SOCK) : undefined
  if (ep.useAgent && !agent) {
    throw new AuthError(
      ep.label,
      'ssh-agent requested but SSH_AUTH_SOCK is not set',
      'Start an agent (`eval $(ssh-agent)`; `ssh-add KEY`) or configure ssh.identityFile instead.',
    )
  }

  const serverHostKey = hostKeyAlgorithmsFor(entries, hostId)
  const config: Record<string, unknown> = {
    username: ep.user,
    port: ep.port,
    readyTimeout: timeoutMs,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 10_000,
    keepaliveCountMax: 3,
    // Tarballs are already compressed; zlib would only burn CPU.
    algorithms: {compress: ['none'], ...(serverHostKey ? {serverHostKey} : {})},
    hostVerifier(key: Buffer) {
      let d: HostKeyDecision
      try {
        d = decideHostKey({entries, hostId, key, pin: ep.hostKey, acceptNew: opts.acceptNew})
      } catch (error) {
        refusal = new HostKeyError({
          host: ep.label,
          problem: 'unknown',
          fingerprint: '?',
          knownHostsPath: opts.knownHostsPath,
          message: `unreadable host key from ${hostId}: ${(error as Error).message}`,
          hint: 'The server sent a host key kflan cannot parse.',
        })
        return false
      }

      if (!d.ok) {
        refusal = hostKeyError({
          host: ep.label,
          hostId,
          decision: d,
          knownHostsPath: opts.knownHostsPath,
          pin: ep.hostKey,
        })
        return false
      }

      accepted = {...d, key: Buffer.from(key)}
      return true
    },
  }
  if (sock) config.sock = sock
  else config.host = ep.address
  if (privateKey !== undefined) config.privateKey = privateKey
  if (ep.password !== undefined) config.password = ep.password
  if (agent) config.agent = agent
  if (privateKey === undefined && ep.password === undefined && !agent) {
    throw new AuthError(
      ep.label,
      `no SSH credentials for ${ep.user}@${ep.address}`,
      'Set ssh.identityFile, ssh.agent or ssh.passwordEnv in the inventory.',
    )
  }

  const ssh = new NodeSSH()
  const log = (entry: Omit<LogEntry, 'ts'>) => logger.log(ep.label, {ts, ...entry})
  try {
    // ssh2's readyTimeout covers TCP connect + handshake + auth; the outer timeout is a backstop.
    await withTimeout(ssh.connect(config), timeoutMs + 2000, () =>
      Object.assign(new Error('Timed out while waiting for handshake'), {level: 'client-timeout'}),
    )
  } catch (error) {
    ssh.dispose()
    const mapped = refusal ?? classifyConnectError(error, ctx)
    if (accepted && accepted.action !== 'known' && mapped instanceof AuthError) {
      // The key itself was trusted: keep it, as ssh does, so the next try only has to fix auth.
      await recordHostKey(
        opts.knownHostsPath,
        hostId,
        accepted.key,
        `kflan:${ep.label}`,
        accepted.action === 'repinned' ? accepted.replaces : [],
      ).catch(() => undefined)
    }

    log({kind: 'connect', durationMs: performance.now() - t0, message: `failed: ${mapped.message}`})
    throw mapped
  }

  // Small request/response exchanges: Nagle + delayed ACK would add ~40 ms to each round trip.
  ;(ssh.connection as unknown as {setNoDelay?: (v: boolean) => void} | null)?.setNoDelay?.(true)
  if (!accepted) {
    ssh.dispose()
    throw new HostKeyError({
      host: ep.label,
      problem: 'unknown',
      fingerprint: '?',
      knownHostsPath: opts.knownHostsPath,
      message: `${hostId} presented no host key`,
      hint: 'Report this as a bug.',
    })
  }

  if (accepted.action !== 'known') {
    const replaces = accepted.action === 'repinned' ? accepted.replaces : []
    await recordHostKey(opts.knownHostsPath, hostId, accepted.key, `kflan:${ep.label}`, replaces)
    const how = {
      pinned: 'matched inventory hostKey',
      repinned: `changed, and matches the inventory's new hostKey (replaced line ${replaces.join(', ')})`,
      'accept-new': 'accepted new',
    }[accepted.action]
    logger.log(ep.label, {
      ts,
      kind: 'hostkey',
      message: `${how} ${accepted.keyType} ${accepted.fingerprint}; recorded in ${opts.knownHostsPath}`,
    })
  }

  const connectMs = performance.now() - t0
  log({
    kind: 'connect',
    durationMs: connectMs,
    message: `${ep.user}@${ep.address}:${ep.port}${via ? ` via ${via}` : ''} host key ${accepted.fingerprint} (${accepted.action})`,
  })
  return {
    ssh,
    hostKey: {fingerprint: accepted.fingerprint, keyType: accepted.keyType, action: accepted.action},
    connectMs,
  }
}

/** Shares one connection per bastion between the targets behind it. */
export class BastionPool {
  private conns = new Map<string, {p: Promise<NodeSSH>; refs: number}>()

  async acquire(b: BastionSpec, opts: ConnectOptions): Promise<{ssh: NodeSSH; release: () => void; label: string}> {
    const key = `${b.user}@${b.address}:${b.port}`
    let c = this.conns.get(key)
    if (!c) {
      const p = openSsh({label: `bastion ${b.address}`, ...b}, opts).then((r) => r.ssh)
      c = {p, refs: 0}
      this.conns.set(key, c)
      p.catch(() => this.conns.delete(key))
    }

    const entry = c
    entry.refs++
    let ssh: NodeSSH
    try {
      ssh = await entry.p
    } catch (error) {
      entry.refs--
      throw error
    }

    let released = false
    return {
      ssh,
      label: key,
      release: () => {
        if (released) return
        released = true
        if (--entry.refs <= 0) {
          this.conns.delete(key)
          ssh.dispose()
        }
      },
    }
  }
}

export class Remote {
  private _mode: PrivilegeMode
  readonly hostKey: HostKeyInfo
  /** Time to connect (TCP + handshake + auth), ms. */
  readonly connectMs: number
  private readonly redactor: Redactor
  private readonly logger: Logger
  private readonly channels: Semaphore
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
    this.channels = new Semaphore(init.maxChannels)
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
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT
    let sock: unknown
    let release: (() => void) | undefined
    let via: string | undefined
    if (target.bastion) {
      const pool = opts.bastionPool ?? new BastionPool()
      const b = await pool.acquire(target.bastion, opts).catch((error: unknown) => {
        // Say which host needed the bastion (a copy: targets behind one bastion share its error).
        if (error instanceof RemoteError) {
          const copy = Object.assign(Object.create(Object.getPrototypeOf(error) as object) as RemoteError, error)
          Object.defineProperty(copy, 'message', {
            value: `${target.name}: via bastion: ${error.message}`,
            enumerable: false,
            writable: true,
            configurable: true,
          })
          Object.defineProperty(copy, 'stack', {
            value: error.stack,
            enumerable: false,
            writable: true,
            configurable: true,
          })
          throw copy
        }

        throw error
      })
      release = b.release
      via = b.label
      try {
        sock = await withTimeout(b.ssh.forwardOut('127.0.0.1', 0, target.address, target.port), timeoutMs, () =>
          Object.assign(new Error('Timed out while waiting for handshake'), {level: 'client-timeout'}),
        )
      } catch (error) {
        release()
        throw classifyConnectError(error, {...target, label: target.name, via, timeoutMs})
      }
    }

    let opened: Awaited<ReturnType<typeof openSsh>>
    try {
      opened = await openSsh({label: target.name, ...target}, opts, sock, via)
    } catch (error) {
      release?.()
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
      release,
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
    w: {command: string; stdinPrefix?: string; sudo: boolean},
    opts: ExecOptions,
    shown = w.command,
  ): Promise<ExecResult> {
    const ts = new Date().toISOString()
    const t0 = performance.now()
    let stdinBytes = 0
    let result: ExecResult
    try {
      result = await this.execOnChannel(w, opts, t0, (n) => {
        stdinBytes += n
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

      if (/Channel open failure|open failed/i.test((error as Error).message ?? '')) {
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
    const logOut = opts.logOutput !== false
    this.logger.log(this.name, {
      ts,
      kind: 'exec',
      command: this.redactor.redact(shown, opts.secrets),
      sudo: w.sudo,
      code: result.code,
      durationMs: result.durationMs,
      stdinBytes: stdinBytes || undefined,
      stdout: logOut
        ? truncateForLog(this.redactor.redact(result.stdout, opts.secrets))
        : result.stdout
          ? '(not logged: secret)'
          : '',
      stderr: logOut
        ? truncateForLog(this.redactor.redact(result.stderr, opts.secrets))
        : result.stderr
          ? '(not logged: secret)'
          : '',
      message: result.timedOut
        ? `timed out after ${opts.timeoutMs}ms`
        : result.signal
          ? `killed by ${result.signal}`
          : undefined,
    })
    return result
  }

  /**
   * Opens a session channel (retrying while sshd refuses new sessions: MaxSessions is shared with
   * SFTP and with commands still finishing), runs the command, and resolves on channel close.
   * The channel slot is released only when the channel is really closed.
   */
  private async execOnChannel(
    w: {command: string; stdinPrefix?: string},
    opts: ExecOptions,
    t0: number,
    countStdin: (n: number) => void,
  ): Promise<ExecResult> {
    let {command} = w
    if (opts.timeoutMs) {
      // The remote side enforces the limit too, so a timed-out command does not linger on the
      // host holding a session slot. 124 / 137: timeout(1)'s codes.
      const secs = Math.max(1, Math.ceil(opts.timeoutMs / 1000))
      command = `timeout -k 2 ${secs} sh -c ${shq(w.command)}`
    }

    for (let attempt = 0; ; attempt++) {
      const conn = this.ssh.connection as unknown as Ssh2Client | null
      if (!conn || this.closed) {
        throw this.connectionClosed('connection is closed')
      }

      const release = await this.channels.acquire()
      const r = await new Promise<ExecResult | 'retry'>((resolve, reject) => {
        conn.exec(command, (err, ch) => {
          if (err) {
            release()
            if (/Channel open failure|open failed/i.test(err.message ?? '') && attempt < 25) resolve('retry')
            else reject(err)
            return
          }

          // Listeners go on synchronously: exit-status, EOF and close can arrive in the same
          // packet batch as the channel confirmation.
          this.runOnChannel(ch, w, opts, t0, countStdin, release).then(resolve, reject)
        })
      })
      if (r !== 'retry') return r
      await sleep(Math.min(50 * 2 ** attempt, 500))
    }
  }

  private runOnChannel(
    ch: Ssh2Channel,
    w: {stdinPrefix?: string},
    opts: ExecOptions,
    t0: number,
    countStdin: (n: number) => void,
    release: () => void,
  ): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = []
      const errOut: Buffer[] = []
      let code: number | null = null
      let signal: string | undefined
      let timedOut = false
      let done = false
      let released = false
      let timer: NodeJS.Timeout | undefined
      const free = () => {
        if (!released) {
          released = true
          release()
        }
      }

      const settle = (fn: () => void) => {
        if (done) return
        done = true
        if (timer) clearTimeout(timer)
        fn()
      }

      const finish = () =>
        settle(() => {
          const durationMs = performance.now() - t0
          if (opts.timeoutMs && (code === 124 || code === 137) && durationMs >= opts.timeoutMs) {
            timedOut = true
            code = null
          }

          resolve({
            code,
            signal,
            timedOut: timedOut || undefined,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errOut).toString('utf8'),
            durationMs,
          })
        })
      ch.on('data', (d: Buffer) => out.push(d))
      ch.stderr.on('data', (d: Buffer) => errOut.push(d))
      ch.on('exit', (c: number | null, s?: string) => {
        if (typeof c === 'number') code = c
        else signal = s ?? undefined
      })
      ch.on('close', () => {
        free()
        finish()
      })
      ch.on('error', (e: Error) => settle(() => reject(e)))
      if (opts.timeoutMs) {
        // Backstop in case the remote timeout(1) cannot act (or the link hangs).
        timer = setTimeout(() => {
          timedOut = true
          code = null
          try {
            ch.signal('KILL')
            ch.close()
          } catch {
            /* channel already gone */
          }

          finish()
        }, opts.timeoutMs + 3000)
      }

      if (w.stdinPrefix) ch.write(w.stdinPrefix)
      const input = opts.stdin
      if (input === undefined) ch.end()
      else if (typeof input === 'string' || Buffer.isBuffer(input)) {
        countStdin(Buffer.byteLength(input))
        ch.end(input)
      } else {
        input.on('data', (d: Buffer) => countStdin(d.length))
        input.on('error', (e: Error) => {
          try {
            ch.close()
          } catch {
            /* ignore */
          }

          settle(() => reject(e))
        })
        input.pipe(ch as unknown as NodeJS.WritableStream)
      }
    })
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

export interface ConnectResult {
  target: TargetSpec
  remote?: Remote
  error?: RemoteError | Error
}

export interface ConnectAllResult {
  /** One per target, in the order given. */
  results: ConnectResult[]
  remotes: Remote[]
  failures: {target: TargetSpec; error: RemoteError | Error}[]
}

/** Connects to every target in parallel; a bad host is reported, never thrown. Bastions are shared. */
export async function connectAll(targets: TargetSpec[], opts: ConnectOptions): Promise<ConnectAllResult> {
  const pool = opts.bastionPool ?? new BastionPool()
  const results = await Promise.all(
    targets.map(async (target): Promise<ConnectResult> => {
      try {
        return {target, remote: await Remote.connect(target, {...opts, bastionPool: pool})}
      } catch (error) {
        return {target, error: error as Error}
      }
    }),
  )
  return {
    results,
    remotes: results.flatMap((r) => (r.remote ? [r.remote] : [])),
    failures: results.flatMap((r) => (r.error ? [{target: r.target, error: r.error}] : [])),
  }
}

export async function closeAll(remotes: Iterable<Remote>): Promise<void> {
  await Promise.all([...remotes].map((r) => r.close()))
}

/**
 * Builds a connection target from an inventory host, reading passwords from the environment
 * variables the inventory names (never from the inventory itself).
 */
export function targetFromHost(host: Host, env: NodeJS.ProcessEnv = process.env): TargetSpec {
  const fromEnv = (name: string | undefined, what: string): string | undefined => {
    if (!name) return undefined
    const v = env[name]
    if (v === undefined) {
      throw new AuthError(
        host.name,
        `${what} variable ${name} is not set`,
        `Export ${name} before running kflan (it holds the ${what} for ${host.name}).`,
      )
    }

    return v
  }

  const s = host.ssh
  return {
    name: host.name,
    address: host.address,
    port: s.port,
    user: s.user,
    identityFile: s.identityFile,
    password: fromEnv(s.passwordEnv, 'SSH password'),
    sudoPassword: fromEnv(s.sudoPasswordEnv, 'sudo password'),
    useAgent: s.agent,
    hostKey: host.hostKey,
    bastion: s.bastion
      ? {
          address: s.bastion.address,
          port: s.bastion.port,
          user: s.bastion.user,
          identityFile: s.bastion.identityFile ?? s.identityFile,
          password: fromEnv(s.bastion.passwordEnv, 'bastion SSH password'),
          useAgent: s.agent,
          hostKey: s.bastion.hostKey,
        }
      : undefined,
  }
}

/** Quotes for the remote shell; re-exported for callers building commands. */
