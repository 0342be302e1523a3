/**
 * Credentials are local input: the identity files and password variables the inventory names are
 * checked on this machine before any certificate is issued or any host contacted, each problem
 * reported at its field like every other inventory problem.
 *
 * An identity file must be a regular, readable file holding an unencrypted private key that
 * neither group nor others may read (OpenSSH refuses such a key as "UNPROTECTED PRIVATE KEY
 * FILE"; kflan holds itself to the same rule). A missing file is reported by checkLocalFiles.
 */
import {createPrivateKey} from 'node:crypto'
import {closeSync, constants as fsc, fstatSync, openSync} from 'node:fs'

import type {Diagnostic, Severity} from './diagnostics.js'
import type {Cluster} from './model.js'
import type {RawInventory} from './schema.js'

import {readFd} from './local-files.js'

type Path = (string | number)[]

/** Private keys are small; a larger file is not one. */
const MAX_KEY_BYTES = 64 * 1024

/** Why `text` is not a usable private key, or undefined when it is one. */
export function keyProblem(text: string): string | undefined {
  const openssh = /-----BEGIN OPENSSH PRIVATE KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END OPENSSH PRIVATE KEY-----/.exec(
    text,
  )
  if (openssh) {
    // openssh-key-v1 (PROTOCOL.key): magic, then the cipher name as an SSH string.
    const b = Buffer.from(openssh[1].replaceAll(/\s+/g, ''), 'base64')
    const magic = 'openssh-key-v1\0'
    if (b.subarray(0, magic.length).toString('latin1') !== magic || b.length < magic.length + 4)
      return 'not a valid OpenSSH private key'
    const len = b.readUInt32BE(magic.length)
    const cipher = b.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1')
    return cipher === 'none' ? undefined : `the key is encrypted (${cipher}) and kflan has no passphrase`
  }

  if (/-----BEGIN (RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----/.test(text)) {
    if (/ENCRYPTED/.test(text)) return 'the key is encrypted and kflan has no passphrase'
    try {
      createPrivateKey({key: text, format: 'pem'})
      return undefined
    } catch (error) {
      return /passphrase/i.test(String(error))
        ? 'the key is encrypted and kflan has no passphrase'
        : 'not a valid PEM private key'
    }
  }

  if (/-----BEGIN [A-Z ]*PUBLIC KEY-----|^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+) AAAA/m.test(text))
    return 'it is a public key; ssh.identityFile names the private key (the file without .pub)'
  return 'not a private key (no -----BEGIN ... PRIVATE KEY----- block)'
}

/** Why the identity file at `file` cannot be used, or undefined (also when it does not exist). */
export function identityFileProblem(file: string): {message: string; hint: string} | undefined {
  let fd: number | undefined
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY)
    const st = fstatSync(fd)
    if (st.isDirectory())
      return {
        message: `identity file ${file} is a directory`,
        hint: 'point ssh.identityFile at the private key file itself, e.g. ~/.ssh/id_ed25519',
      }
    if (!st.isFile())
      return {
        message: `identity file ${file} is not a regular file`,
        hint: 'point ssh.identityFile at the private key file itself',
      }
    if ((st.mode & 0o077) !== 0) {
      return {
        message: `identity file ${file} is readable by ${st.mode & 0o070 ? 'its group' : 'others'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): OpenSSH refuses such a key`,
        hint: `chmod 600 ${file}`,
      }
    }

    if (st.size > MAX_KEY_BYTES)
      return {
        message: `identity file ${file} is ${st.size} bytes: not a private key`,
        hint: 'point ssh.identityFile at your private key',
      }
    const why = keyProblem(readFd(fd, MAX_KEY_BYTES).toString('utf8'))
    if (why) {
      return {
        message: `identity file ${file}: ${why}`,
        hint: /encrypted/.test(why)
          ? 'load the key into an ssh-agent (`ssh-add KEY`) and set ssh.agent: true instead'
          : 'point ssh.identityFile at your private key, or use agent: true',
      }
    }

    return undefined
  } catch (error) {
    const {code} = error as NodeJS.ErrnoException
    if (code === 'ENOENT') return undefined // checkLocalFiles reports missing files
    return {
      message: `cannot read identity file ${file}: ${code === 'EACCES' ? 'permission denied' : (code ?? String(error))}`,
      hint: 'make the key readable by the user running kflan (and by nobody else: chmod 600)',
    }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/**
 * The identity files and password variables of every host kflan would connect to (pure but for
 * reading the key files). Unset variables get `envSeverity` (`kflan validate` warns, commands
 * that connect refuse).
 */
export function checkCredentials(
  inv: RawInventory,
  c: Cluster,
  opts: {env?: NodeJS.ProcessEnv; envSeverity?: Severity} = {},
): Diagnostic[] {
  const env = opts.env ?? process.env
  const out: Diagnostic[] = []
  const seen = new Set<string>()
  const once = (key: string) => (seen.has(key) ? false : (seen.add(key), true))
  for (const [i, h] of c.hosts.entries()) {
    if (!h.roles.etcd && !h.roles.flannel) continue
    const own = inv.hosts[i].ssh
    // The field a resolved setting came from: the host's own ssh block, else the cluster's.
    const at = (key: 'identityFile' | 'passwordEnv' | 'sudoPasswordEnv' | 'agent'): Path =>
      own?.[key] === undefined ? ['ssh', key] : ['hosts', i, 'ssh', key]
    const bastionAt = (key: 'identityFile' | 'passwordEnv'): Path => {
      const base: Path = own?.bastion ? ['hosts', i, 'ssh', 'bastion'] : ['ssh', 'bastion']
      const b = own?.bastion ?? inv.ssh.bastion
      return b?.[key] === undefined ? (key === 'identityFile' ? at('identityFile') : [...base, key]) : [...base, key]
    }

    const file = (f: string | undefined, path: Path) => {
      if (!f || !once(`file:${f}`)) return
      const p = identityFileProblem(f)
      if (p) out.push({severity: 'error', path, message: p.message, hint: p.hint})
    }

    const variable = (name: string | undefined, path: Path, what: string) => {
      if (!name || !once(`env:${name}`)) return
      const v = env[name]
      if (v === undefined)
        out.push({
          severity: opts.envSeverity ?? 'error',
          path,
          message: `${what} variable ${name} is not set`,
          hint: `export ${name} before running kflan (it holds the ${what}; never put it in the inventory)`,
        })
      else if (/[\r\n\0]/.test(v))
        out.push({
          severity: 'error',
          path,
          message: `${what} variable ${name} contains a newline or NUL`,
          hint: `a password is one line: set ${name} to the password alone`,
        })
    }

    const s = h.ssh
    file(s.identityFile, at('identityFile'))
    variable(s.passwordEnv, at('passwordEnv'), 'SSH password')
    variable(s.sudoPasswordEnv, at('sudoPasswordEnv'), 'sudo password')
    if (s.agent && !env.SSH_AUTH_SOCK && once('agent')) {
      out.push({
        severity: opts.envSeverity ?? 'error',
        path: at('agent'),
        message: 'ssh.agent is true but SSH_AUTH_SOCK is not set',
        hint: 'start an agent (`eval $(ssh-agent)`; `ssh-add KEY`) or set ssh.identityFile',
      })
    }

    if (s.bastion) {
      file(s.bastion.identityFile, bastionAt('identityFile'))
      variable(s.bastion.passwordEnv, bastionAt('passwordEnv'), 'bastion SSH password')
    }
  }

  return out
}
