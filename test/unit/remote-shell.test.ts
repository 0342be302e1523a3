import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Host} from '../../src/inventory/model.js'

import {classifyConnectError} from '../../src/remote/connect-errors.js'
import {AuthError, RemoteCommandError, trimOutput, UnreachableHostError} from '../../src/remote/errors.js'
import {FileLogger, formatLogEntry, MemoryLogger, Redactor, truncateForLog} from '../../src/remote/logger.js'
import {shq, sudoFailure, wrapCommand} from '../../src/remote/shell.js'
import {targetFromHost} from '../../src/remote/target.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kflan-shell-'))
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const sh = (cmd: string, input?: string) => execFileSync('sh', ['-c', cmd], {encoding: 'utf8', input})

describe('quoting', () => {
  it('round-trips awkward strings through a real sh', () => {
    for (const s of [
      "it's",
      'a b',
      '$HOME',
      '`id`',
      '"q"',
      String.raw`back\slash`,
      '',
      'new\nline',
      '*',
      '-n',
      'plain/path-1.2',
    ]) {
      expect(sh(`printf '%s' ${shq(s)}`)).toBe(s)
    }
  })
})

describe('sudo wrapping', () => {
  it('runs as is for root, or when root is not asked for', () => {
    expect(wrapCommand('id -u', {asRoot: true, mode: 'root'})).toEqual({command: 'id -u', sudo: false})
    expect(wrapCommand('id -u', {asRoot: false, mode: 'sudo'})).toEqual({command: 'id -u', sudo: false})
  })

  it('uses sudo -n and sh -c so pipes and redirections run as root', () => {
    const w = wrapCommand('echo x > /etc/y && cat /etc/y | wc -l', {asRoot: true, mode: 'sudo'})
    expect(w.command).toBe(`sudo -n -- sh -c 'echo x > /etc/y && cat /etc/y | wc -l'`)
    expect(w.stdinPrefix).toBeUndefined()
  })

  it('puts the sudo password on stdin, never in argv', () => {
    const w = wrapCommand('true', {asRoot: true, mode: 'sudo-password', sudoPassword: "p'w $x"})
    expect(w.command).toBe(`sudo -k -S -p '' -- sh -c true`)
    expect(w.command).not.toContain("p'w")
    expect(w.stdinPrefix).toBe("p'w $x\n")
    expect(() => wrapCommand('true', {asRoot: true, mode: 'sudo-password', sudoPassword: 'a\nb'})).toThrow()
  })

  it('the wrapped command line still runs the original command (sudo replaced by a shim)', () => {
    const shim = path.join(dir, 'sudo')
    // A stand-in sudo that drops its options and runs the rest, reading the password line first.
    execFileSync('sh', [
      '-c',
      `printf '%s\\n' '#!/bin/sh' 'pw=; while [ "$1" != "--" ]; do [ "$1" = "-S" ] && read -r pw; shift; done; shift; echo "pw=$pw" >&2; exec "$@"' > ${shim}; chmod +x ${shim}`,
    ])
    const w = wrapCommand(`cat | tr a-z A-Z; echo "$((1+2))"`, {
      asRoot: true,
      mode: 'sudo-password',
      sudoPassword: 'secret1',
    })
    const out = execFileSync('sh', ['-c', w.command], {
      encoding: 'utf8',
      input: `${w.stdinPrefix}hello\n`,
      env: {...process.env, PATH: `${dir}:${process.env.PATH}`},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    expect(out).toBe('HELLO\n3\n')
  })

  it('recognizes sudo refusals', () => {
    expect(sudoFailure('sudo: a password is required\n', 'sudo', 'deploy')?.hint).toMatch(/NOPASSWD/)
    expect(sudoFailure('sudo: 1 incorrect password attempt\n', 'sudo-password', 'deploy')?.message).toMatch(
      /rejected the password/,
    )
    expect(
      sudoFailure('deploy is not in the sudoers file.  This incident will be reported.\n', 'sudo', 'deploy')?.message,
    ).toMatch(/may not use sudo/)
    expect(sudoFailure('sh: 1: sudo: not found\n', 'sudo', 'deploy')?.message).toMatch(/not installed/)
    expect(sudoFailure('cp: cannot stat x\n', 'sudo', 'deploy')).toBeUndefined()
    expect(sudoFailure('sudo: a password is required\n', 'root', 'root')).toBeUndefined()
  })
})

describe('redaction and logs', () => {
  it('redacts every registered secret, longest first, and ignores tiny ones', () => {
    const r = new Redactor(['hunter22', undefined, 'ab', 'hunter22-long'])
    expect(r.redact('pw=hunter22-long and hunter22, ab')).toBe('pw=*** and ***, ab')
    expect(r.redact('extra tok3n', ['tok3n'])).toBe('extra ***')
  })

  it('file logger appends JSON lines with mode 0600', () => {
    const f = path.join(dir, 'logs', 'kflan.log')
    const l = new FileLogger(f)
    l.log('m1', {ts: 't', kind: 'exec', command: 'true', code: 0, durationMs: 3})
    l.log('m2', {ts: 't', kind: 'connect', message: 'ok'})
    l.close()
    const lines = readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x))
    expect(lines).toEqual([
      {host: 'm1', ts: 't', kind: 'exec', command: 'true', code: 0, durationMs: 3},
      {host: 'm2', ts: 't', kind: 'connect', message: 'ok'},
    ])
    expect(statSync(f).mode & 0o777).toBe(0o600)
  })

  it('text format is readable', () => {
    const s = formatLogEntry('m1', {
      ts: 'T',
      kind: 'exec',
      command: 'ls',
      code: 2,
      durationMs: 12.4,
      sudo: true,
      stdout: 'a\nb\n',
      stderr: 'oops',
    })
    expect(s).toBe('T m1 exec rc=2 12ms sudo $ ls\n    out| a\n    out| b\n    err| oops\n')
    const l = new FileLogger(path.join(dir, 'text.log'), 'text')
    l.log('m1', {ts: 'T', kind: 'note', message: 'hi'})
    l.close()
    expect(readFileSync(path.join(dir, 'text.log'), 'utf8')).toBe('T m1 note # hi\n')
    expect(truncateForLog('x'.repeat(100), 20)).toMatch(/80 chars omitted/)
    const m = new MemoryLogger()
    m.log('h', {ts: 't', kind: 'note'})
    expect(m.entries).toHaveLength(1)
  })
})

describe('errors', () => {
  const ep = {
    label: 'm1',
    name: 'm1',
    address: '10.0.0.1',
    port: 2222,
    user: 'root',
    identityFile: '/k',
    timeoutMs: 8000,
  }

  it('maps connect failures to typed errors with hints', () => {
    const refused = classifyConnectError(
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:2222'), {code: 'ECONNREFUSED', level: 'client-socket'}),
      ep,
    )
    expect(refused).toBeInstanceOf(UnreachableHostError)
    expect(refused.message).toBe('m1: cannot reach 10.0.0.1:2222: connection refused (port closed)')
    expect(refused.hint).toContain('ssh -p 2222 root@10.0.0.1')
    const timeout = classifyConnectError(
      Object.assign(new Error('Timed out while waiting for handshake'), {level: 'client-timeout'}),
      ep,
    )
    expect(timeout).toBeInstanceOf(UnreachableHostError)
    expect((timeout as UnreachableHostError).reason).toBe('timeout')
    expect(timeout.hint).toMatch(/firewall/)
    const auth = classifyConnectError(
      Object.assign(new Error('All configured authentication methods failed'), {level: 'client-authentication'}),
      ep,
    )
    expect(auth).toBeInstanceOf(AuthError)
    expect(auth.message).toContain('key /k')
    expect(
      classifyConnectError(new Error('Encrypted private key detected, but no passphrase given'), ep),
    ).toBeInstanceOf(AuthError)
    expect(
      (
        classifyConnectError(
          Object.assign(new Error('getaddrinfo ENOTFOUND x'), {code: 'ENOTFOUND'}),
          ep,
        ) as UnreachableHostError
      ).reason,
    ).toBe('ENOTFOUND')
  })

  it('command errors name host, command, code and trimmed stderr', () => {
    const e = new RemoteCommandError({
      host: 'm1',
      command: 'systemctl start etcd',
      code: 1,
      stderr: `${'noise\n'.repeat(20)}Job failed.\n`,
    })
    expect(e.message).toBe('m1: `systemctl start etcd` exited 1: noise\nnoise\nnoise\nnoise\nJob failed.')
    expect(e.hint).toBeTruthy()
    expect(trimOutput('\n\n  a  \n\n')).toBe('  a')
    expect(
      new RemoteCommandError({host: 'h', command: 'sleep 9', code: null, stderr: '', timedOut: true}).message,
    ).toBe('h: `sleep 9` timed out')
  })
})

describe('targets from the inventory', () => {
  const host: Host = {
    name: 'm1',
    address: '10.0.0.1',
    hostKey: 'SHA256:x',
    ssh: {
      user: 'deploy',
      port: 2222,
      identityFile: '/k',
      sudoPasswordEnv: 'SUDO_PW',
      agent: false,
      bastion: {address: 'b', port: 22, user: 'jump', hostKey: 'SHA256:b'},
    },
    roles: {master: true, node: false, etcd: true, flannel: true},
  }

  it('reads passwords from the named variables', () => {
    const t = targetFromHost(host, {SUDO_PW: 's3cret'})
    expect(t).toMatchObject({
      name: 'm1',
      address: '10.0.0.1',
      port: 2222,
      user: 'deploy',
      sudoPassword: 's3cret',
      hostKey: 'SHA256:x',
    })
    expect(t.bastion).toMatchObject({address: 'b', user: 'jump', identityFile: '/k', hostKey: 'SHA256:b'})
    expect(() => targetFromHost(host, {})).toThrow(/SUDO_PW is not set/)
  })
})
