/**
 * Errors raised by the SSH layer. Each names the host and carries a `hint` the user can act on, so
 * commands print them as a short message without a stack trace (they extend KflanError).
 */
import {KflanError} from '../errors.js'

/** Base of every error this module raises on purpose. */
export class RemoteError extends KflanError {
  /** Inventory name of the host (or its address when no name is known). */
  readonly host: string
  declare readonly hint: string

  constructor(host: string, message: string, hint: string, cause?: unknown) {
    super(message, {hint, cause, exitCode: 1})
    this.name = 'RemoteError'
    this.host = host
  }
}

/** TCP connect failed, timed out, or the SSH handshake never completed. */
export class UnreachableHostError extends RemoteError {
  /** Low-level reason, e.g. `ECONNREFUSED`, `timeout`, `EHOSTUNREACH`. */
  readonly reason: string

  constructor(opts: {
    host: string
    address: string
    port: number
    user: string
    reason: string
    detail: string
    via?: string
    cause?: unknown
  }) {
    const {host, address, port, user, reason, detail, via} = opts
    const where = `${address}:${port}${via ? ` (via bastion ${via})` : ''}`
    let hint: string
    switch (reason) {
      case 'closed': {
        hint = `The SSH connection to ${where} was lost (host rebooted, sshd restarted, or network dropped). Re-run the command; kflan converges from where it stopped.`

        break
      }

      case 'ECONNREFUSED': {
        hint = `Nothing listens on port ${port} at ${address}: is sshd running there, and is the inventory's ssh port right? Try \`ssh -p ${port} ${user}@${address}\`.`

        break
      }

      case 'handshake': {
        hint = `sshd at ${where} answered but the SSH handshake failed (no common algorithm, or not an SSH server). Try \`ssh -v -p ${port} ${user}@${address}\`.`

        break
      }

      default: {
        hint = `Check the address and port in the inventory, that the host is up, and that no firewall drops port ${port}: try \`ssh -p ${port} ${user}@${address}\`.`
      }
    }

    super(host, `${host}: cannot reach ${where}: ${detail}`, hint, opts.cause)
    this.name = 'UnreachableHostError'
    this.reason = reason
  }
}

/** The server refused every authentication method we offered, or sudo refused us. */
export class AuthError extends RemoteError {
  constructor(host: string, message: string, hint: string, cause?: unknown) {
    super(host, `${host}: ${message}`, hint, cause)
    this.name = 'AuthError'
  }
}

export type HostKeyProblem = 'unknown' | 'changed' | 'pin-mismatch' | 'revoked'

/** The server's host key is not trusted: never silently accepted. */
export class HostKeyError extends RemoteError {
  readonly problem: HostKeyProblem
  /** Fingerprint the server presented (`SHA256:…`). */
  readonly fingerprint: string
  readonly knownHostsPath: string

  constructor(opts: {
    host: string
    problem: HostKeyProblem
    message: string
    hint: string
    fingerprint: string
    knownHostsPath: string
  }) {
    super(opts.host, `${opts.host}: ${opts.message}`, opts.hint)
    this.name = 'HostKeyError'
    this.problem = opts.problem
    this.fingerprint = opts.fingerprint
    this.knownHostsPath = opts.knownHostsPath
  }
}

/** A remote command exited non-zero (or timed out) where success was required. */
export class RemoteCommandError extends RemoteError {
  readonly command: string
  /** Exit code; null when killed by a signal or timed out. */
  readonly code: number | null
  readonly stderr: string
  readonly stdout: string

  constructor(opts: {
    host: string
    command: string
    code: number | null
    stderr: string
    stdout?: string
    hint?: string
    timedOut?: boolean
  }) {
    const stderr = trimOutput(opts.stderr)
    const status = opts.timedOut ? 'timed out' : opts.code === null ? 'was killed' : `exited ${opts.code}`
    const shown = opts.command.length > 160 ? `${opts.command.slice(0, 157)}...` : opts.command
    super(
      opts.host,
      `${opts.host}: \`${shown}\` ${status}${stderr ? `: ${stderr}` : ''}`,
      opts.hint ??
        (opts.timedOut
          ? `If ${opts.host} is only slow (an emulated VM, a loaded machine), give it more time under \`timeouts:\` in the inventory (docs/inventory.md, "Timeouts"); kflan's command log has every command it ran, with its duration.`
          : `Run the command by hand on ${opts.host} to see the whole output; kflan's command log has every command it ran.`),
    )
    this.name = 'RemoteCommandError'
    this.command = opts.command
    this.code = opts.code
    this.stderr = opts.stderr
    this.stdout = opts.stdout ?? ''
  }
}

/** The last few non-empty lines of a command's output, for error messages. */
export function trimOutput(s: string, maxLines = 5, maxChars = 600): string {
  const lines = s
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
  let out = lines.slice(-maxLines).join('\n')
  if (out.length > maxChars) out = `...${out.slice(-maxChars)}`
  return out
}
