/** Pure helpers for building remote shell commands: quoting and sudo wrapping. */

/** Single-quotes a string for POSIX sh. */
export function shq(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** How commands that need root are run on a host. */
export type PrivilegeMode =
  /** Logged in as root: commands run as they are. */
  | 'root'
  /** `sudo -n`: the user has passwordless sudo. */
  | 'sudo'
  /** `sudo -S -p ''` with the password on stdin (never in argv). */
  | 'sudo-password'

export interface WrappedCommand {
  /** The command line to send. */
  command: string
  /** Bytes to send on stdin before the caller's own stdin (the sudo password line). */
  stdinPrefix?: string
  sudo: boolean
}

/**
 * Wraps a command so it runs as root in the given mode. The command is run by `sh -c` under sudo
 * so pipes, redirections and `&&` apply to the whole command, as root.
 *
 * With a password, `-k` makes sudo ignore cached credentials and so always read the password:
 * otherwise a cached timestamp would let the password line fall through to the command's stdin.
 */
export function wrapCommand(
  cmd: string,
  opts: {asRoot: boolean; mode: PrivilegeMode; sudoPassword?: string},
): WrappedCommand {
  if (!opts.asRoot || opts.mode === 'root') return {command: cmd, sudo: false}
  if (opts.mode === 'sudo-password') {
    if (opts.sudoPassword === undefined) throw new Error('sudo-password mode without a password')
    if (opts.sudoPassword.includes('\n')) throw new Error('sudo password must not contain a newline')
    return {command: `sudo -k -S -p '' -- sh -c ${shq(cmd)}`, stdinPrefix: `${opts.sudoPassword}\n`, sudo: true}
  }

  return {command: `sudo -n -- sh -c ${shq(cmd)}`, sudo: true}
}

/**
 * Recognizes sudo's own refusals in a command's stderr, so they surface as authentication
 * problems with a hint rather than as a failed command.
 */
export function sudoFailure(
  stderr: string,
  mode: PrivilegeMode,
  user: string,
): {message: string; hint: string} | undefined {
  if (mode === 'root') return undefined
  const s = stderr
  if (/sudo: (a )?password is required/.test(s) || /sudo: a terminal is required/.test(s)) {
    return {
      message: `sudo needs a password for ${user}`,
      hint: `Give ${user} passwordless sudo (\`${user} ALL=(ALL) NOPASSWD:ALL\` in /etc/sudoers.d/), or set the inventory's ssh.sudoPasswordEnv to a variable holding the sudo password.`,
    }
  }

  if (/incorrect password attempt|Sorry, try again/.test(s)) {
    return {
      message: `sudo rejected the password for ${user}`,
      hint: `Check the sudo password in the variable named by ssh.sudoPasswordEnv.`,
    }
  }

  if (/is not in the sudoers file|is not allowed to (run|execute)|may not run sudo/.test(s)) {
    return {
      message: `${user} may not use sudo`,
      hint: `Add ${user} to the sudoers (e.g. a file in /etc/sudoers.d/), or connect as root.`,
    }
  }

  if (/you must have a tty to run sudo/.test(s)) {
    return {
      message: `sudo requires a tty for ${user} (requiretty)`,
      hint: `Remove \`Defaults requiretty\` from the sudoers for ${user}.`,
    }
  }

  if (/sudo: (command )?not found|sudo: No such file/.test(s)) {
    return {message: `sudo is not installed`, hint: `Install sudo on the host, or connect as root.`}
  }

  return undefined
}
