/**
 * Issue 11: input errors are exit 2 with a message, never "kflan bug" and a stack trace. Unit tests
 * of each check, then the CLI's commands (from the sources, test/unit/run-cli-from-src.ts) in
 * child processes for the exit code and the message.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {InputError} from '../../src/errors.js'
import {
  type Finding,
  ignorableChecks,
  parseIgnored,
  preflightChecks,
  preflightHint,
} from '../../src/init/preflight-checks.js'
import {identityFileProblem, keyProblem} from '../../src/inventory/credentials.js'
import {formatDiagnostic} from '../../src/inventory/diagnostics.js'
import {parseInventory} from '../../src/inventory/load.js'
import {ensureWritableDir, readBoundedFile} from '../../src/inventory/local-files.js'
import {knownHostsLine, knownHostsProblems} from '../../src/remote/hostkeys.js'
import {clusterFrom, minimalInventory, repoRoot, sampleFacts} from './helpers.js'

/** A YAML "billion laughs": nine levels of ten aliases each (10^9 nodes once expanded). */
function aliasBombLines(): string[] {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
  for (let i = 1; i < 9; i++) {
    const name = String.fromCodePoint(97 + i)
    const prev = String.fromCodePoint(96 + i)
    lines.push(`${name}: &${name} [${Array.from({length: 10}).fill(`*${prev}`).join(', ')}]`)
  }

  return lines
}

const tmp = () => mkdtempSync(join(tmpdir(), 'kflan-input-'))
const isRoot = process.getuid?.() === 0

/** A fresh ed25519 key pair from ssh-keygen (the format OpenSSH writes today). */
function sshKey(dir: string, name: string, passphrase = ''): string {
  const f = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', f])
  return f
}

function credentialErrors(extraSsh: string, env: NodeJS.ProcessEnv = {}) {
  const text = minimalInventory().replace('hosts:\n', `ssh:\n${extraSsh}hosts:\n`)
  return parseInventory(text, '/inv/inv.yaml', {credentials: 'error', env}).diagnostics.map((d) =>
    formatDiagnostic('inv.yaml', d),
  )
}

describe('YAML alias bomb', () => {
  it('is one error at 1:1, not an exhausted process', () => {
    const lines = aliasBombLines()
    const r = parseInventory(lines.join('\n') + '\n', 'bomb.yaml')
    expect(r.cluster).toBeUndefined()
    expect(r.diagnostics.map((d) => formatDiagnostic('bomb.yaml', d))).toEqual([
      expect.stringMatching(/^bomb\.yaml:1:1: error: YAML: Excessive alias count/),
    ])
  })

  it('leaves a few ordinary aliases alone', () => {
    const text = minimalInventory().replace('roles:\n  masters: [m1]', 'roles:\n  masters: &m [m1]\n  etcd: *m')
    expect(parseInventory(text, 'inv.yaml').cluster).toBeDefined()
  })
})

describe('bounded reads of input files', () => {
  it('refuses a FIFO without blocking, devices and directories; reads a regular file', () => {
    const d = tmp()
    const fifo = join(d, 'fifo')
    execFileSync('mkfifo', [fifo])
    expect(() => readBoundedFile(fifo, 'inventory', 1024, 'h')).toThrow(
      /inventory .*fifo is a FIFO: kflan reads only regular files/,
    )
    expect(() => readBoundedFile('/dev/zero', 'inventory', 1024, 'h')).toThrow(/is a device/)
    expect(() => readBoundedFile(d, 'inventory', 1024, 'h')).toThrow(/is a directory/)
    expect(() => readBoundedFile(join(d, 'none'), 'inventory', 1024, 'h')).toThrow(
      /cannot read inventory .*: no such file/,
    )
    writeFileSync(join(d, 'big'), 'x'.repeat(2000))
    expect(() => readBoundedFile(join(d, 'big'), 'inventory', 1024, 'h')).toThrow(
      /2000 bytes; kflan reads at most 1024/,
    )
    writeFileSync(join(d, 'ok'), 'cluster: t\n')
    expect(readBoundedFile(join(d, 'ok'), 'inventory', 1024, 'h').toString()).toBe('cluster: t\n')
    for (const f of [fifo, '/dev/zero']) expect(() => readBoundedFile(f, 'x', 1, 'h')).toThrow(InputError)
  })
})

describe('directories kflan writes into', () => {
  it('refuses a path that is a file or lies under a file, and creates a missing one', () => {
    const d = tmp()
    writeFileSync(join(d, 'file'), '')
    expect(() => ensureWritableDir(join(d, 'file'), 'state directory', 'h')).toThrow(
      /state directory .*file cannot hold files: it is a file/,
    )
    expect(() => ensureWritableDir(join(d, 'file/sub'), 'state directory', 'h')).toThrow(
      /cannot hold files: a part of the path is a file/,
    )
    expect(ensureWritableDir(join(d, 'new/state'), 'state directory', 'h')).toBe(join(d, 'new/state'))
    expect(existsSync(join(d, 'new/state'))).toBe(true)
  })
})

describe('credentials are checked before any host is contacted', () => {
  it('accepts a private key with mode 0600 and a set password variable', () => {
    const d = tmp()
    const key = sshKey(d, 'id')
    expect(identityFileProblem(key)).toBeUndefined()
    expect(credentialErrors(`  identityFile: ${key}\n  sudoPasswordEnv: SUDO_PW\n`, {SUDO_PW: 'secret'})).toEqual([])
  })

  it('refuses a directory, a key readable by group or others, a file that is no key, a public key, an encrypted key', () => {
    const d = tmp()
    const open = sshKey(d, 'open')
    chmodSync(open, 0o640)
    const world = sshKey(d, 'world')
    chmodSync(world, 0o604)
    const junk = join(d, 'junk')
    writeFileSync(junk, 'hello\n', {mode: 0o600})
    const pub = join(d, 'pub')
    writeFileSync(pub, readFileSync(`${open}.pub`), {mode: 0o600})
    const enc = sshKey(d, 'enc', 'a passphrase')
    mkdirSync(join(d, 'dir'), {mode: 0o700})
    expect(identityFileProblem(join(d, 'dir'))?.message).toMatch(/is a directory/)
    expect(identityFileProblem(open)?.message).toMatch(
      /readable by its group \(mode 0640\): OpenSSH refuses such a key/,
    )
    expect(identityFileProblem(open)?.hint).toBe(`chmod 600 ${open}`)
    expect(identityFileProblem(world)?.message).toMatch(/readable by others \(mode 0604\)/)
    expect(identityFileProblem(junk)?.message).toMatch(/not a private key/)
    expect(identityFileProblem(pub)?.message).toMatch(/it is a public key/)
    expect(identityFileProblem(enc)?.message).toMatch(/the key is encrypted \(aes256-ctr\) and kflan has no passphrase/)
    expect(identityFileProblem(enc)?.hint).toMatch(/ssh-agent/)
    expect(identityFileProblem(join(d, 'missing'))).toBeUndefined() // checkLocalFiles reports it
    const errs = credentialErrors(`  identityFile: ${join(d, 'dir')}\n`)
    expect(errs).toEqual([
      expect.stringMatching(/^inv\.yaml:3:\d+: error: ssh\.identityFile: identity file .*dir is a directory/),
    ])
  })

  it.skipIf(isRoot)('refuses an identity file the user cannot read (not testable as root)', () => {
    const d = tmp()
    const key = sshKey(d, 'id')
    chmodSync(key, 0o000)
    expect(identityFileProblem(key)?.message).toMatch(/cannot read identity file .*: permission denied/)
  })

  it('recognises PEM keys (RSA, EC), and encrypted PEM keys', () => {
    const rsa = generateKeyPairSync('rsa', {modulusLength: 1024}).privateKey
    expect(keyProblem(rsa.export({type: 'pkcs1', format: 'pem'}) as string)).toBeUndefined()
    const ec = generateKeyPairSync('ec', {namedCurve: 'P-256'}).privateKey
    expect(keyProblem(ec.export({type: 'sec1', format: 'pem'}) as string)).toBeUndefined()
    expect(
      keyProblem(ec.export({type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x'}) as string),
    ).toMatch(/encrypted/)
    expect(
      keyProblem(ec.export({type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x'}) as string),
    ).toMatch(/encrypted/)
  })

  it('refuses an unset password variable, one with a newline, and agent without SSH_AUTH_SOCK, at their fields', () => {
    expect(credentialErrors('  passwordEnv: KFLAN_T_PW\n')).toEqual([
      expect.stringMatching(/^inv\.yaml:3:\d+: error: ssh\.passwordEnv: SSH password variable KFLAN_T_PW is not set/),
    ])
    expect(credentialErrors('  sudoPasswordEnv: KFLAN_T_PW\n', {KFLAN_T_PW: 'a\nb'})).toEqual([
      expect.stringMatching(/ssh\.sudoPasswordEnv: sudo password variable KFLAN_T_PW contains a newline/),
    ])
    expect(credentialErrors('  agent: true\n')).toEqual([
      expect.stringMatching(/ssh\.agent: ssh\.agent is true but SSH_AUTH_SOCK is not set/),
    ])
    expect(credentialErrors('  bastion: {address: 203.0.113.1, passwordEnv: KFLAN_B_PW}\n')).toEqual([
      expect.stringMatching(/ssh\.bastion\.passwordEnv: bastion SSH password variable KFLAN_B_PW is not set/),
    ])
    // validate only warns about variables (it may run where the secrets are not).
    const text = minimalInventory().replace('hosts:\n', 'ssh:\n  passwordEnv: KFLAN_T_PW\nhosts:\n')
    const r = parseInventory(text, 'inv.yaml', {credentials: 'warning', env: {}})
    expect(r.cluster).toBeDefined()
    expect(r.diagnostics.map((x) => x.severity)).toEqual(['warning'])
  })

  it('names the host whose own ssh block holds the setting', () => {
    const text = minimalInventory().replace(
      '{name: n2, address: 10.0.0.22}',
      '{name: n2, address: 10.0.0.22, ssh: {passwordEnv: KFLAN_N2_PW}}',
    )
    const r = parseInventory(text, 'inv.yaml', {credentials: 'error', env: {}})
    expect(r.diagnostics.map((d) => formatDiagnostic('inv.yaml', d))).toEqual([
      expect.stringMatching(
        /^inv\.yaml:5:\d+: error: hosts\[2\]\.ssh\.passwordEnv: SSH password variable KFLAN_N2_PW is not set/,
      ),
    ])
  })
})

describe('--ignore-preflight-errors and preflight hints', () => {
  const c = clusterFrom(minimalInventory())

  it('accepts check names of this cluster in any case, and all', () => {
    expect(ignorableChecks(c)).toEqual([
      'OS',
      'Systemd',
      'Arch',
      'Tools',
      'Docker',
      'Iptables',
      'Port-2379',
      'Port-2380',
      'Port-8472',
    ])
    expect([...parseIgnored('docker, port-2379,ALL', c)]).toEqual(['docker', 'port-2379', 'all'])
    expect(parseIgnored(undefined, c).size).toBe(0)
  })

  it('refuses a name that is no check, listing the valid ones', () => {
    expect(() => parseIgnored('Swap', c)).toThrow(InputError)
    expect(() => parseIgnored('Docker,Swap', c)).toThrow(/"Swap" is not a preflight check/)
    try {
      parseIgnored('Port-9999', c)
    } catch (error) {
      expect((error as InputError).hint).toBe(
        'valid names: OS, Systemd, Arch, Tools, Docker, Iptables, Port-2379, Port-2380, Port-8472, or all',
      )
      expect((error as InputError).exitCode).toBe(2)
    }
  })

  it('refuses to ignore the checks that guard values written into units', () => {
    expect(() => parseIgnored('hostaddress', c)).toThrow(/HostAddress cannot be ignored/)
    expect(() => parseIgnored('Interface', c)).toThrow(/Interface cannot be ignored/)
  })

  it('never suggests skipping a guard check', () => {
    const f = (name: string): Finding => ({name, severity: 'error', message: 'x'})
    expect(preflightHint([f('Interface')])).not.toMatch(/ignore-preflight-errors/)
    expect(preflightHint([f('Interface')])).toMatch(
      /fix hosts\[\]\.interface \(or flannel\.interface\) in the inventory .* cannot be skipped/,
    )
    const both = preflightHint([f('HostAddress'), f('Docker'), f('Port-2379')])
    expect(both).toMatch(/--ignore-preflight-errors=Docker,Port-2379$/)
    expect(both).not.toMatch(/=.*HostAddress/)
  })

  it("refuses the network and broadcast address of the host's own subnet", () => {
    for (const [addr, len, edge] of [
      ['10.0.0.0', 24, 'network address'],
      ['10.0.0.255', 24, 'broadcast address'],
      ['10.0.0.31', 27, 'broadcast address'],
    ] as const) {
      const cl = clusterFrom(minimalInventory().replace('10.0.0.21', addr))
      const h = cl.hosts[1]
      const facts = sampleFacts({
        interfaces: [{name: 'eth0', addresses: [{family: 'inet', address: addr, prefixLen: len}]}],
      })
      expect(
        preflightChecks(cl, h, facts)
          .filter((x) => x.name === 'HostAddress')
          .map((x) => x.message),
      ).toEqual([expect.stringMatching(new RegExp(`is the ${edge} of eth0's subnet`))])
    }

    const ok = clusterFrom(minimalInventory().replace('10.0.0.21', '10.0.0.0'))
    expect(
      preflightChecks(
        ok,
        ok.hosts[1],
        sampleFacts({interfaces: [{name: 'eth0', addresses: [{family: 'inet', address: '10.0.0.0', prefixLen: 31}]}]}),
      ).filter((x) => x.name === 'HostAddress'),
    ).toEqual([])
  })
})

describe('known_hosts lines kflan cannot parse', () => {
  it('names each bad line and why, and passes good ones', () => {
    const good = knownHostsLine(
      '[10.0.0.1]:22',
      Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.alloc(36)]),
    )
    const text = [
      '# comment',
      good,
      'garbage',
      '@bogus host ssh-ed25519 AAAA',
      'host ssh-ed25519 not*base64',
      `host ssh-rsa ${good.split(' ')[2]}`,
      '',
      good,
    ].join('\n')
    expect(knownHostsProblems(text)).toEqual([
      {line: 3, why: 'fewer than three fields (hosts, key type, key)'},
      {line: 4, why: 'unknown marker "@bogus"'},
      {line: 5, why: 'the key is not base64'},
      {line: 6, why: 'the key is not a "ssh-rsa" key'},
    ])
  })
})

// ---------------------------------------------------------------- the CLI, in child processes

const FROM_SRC = join(repoRoot, 'test/unit/run-cli-from-src.ts')

function cli(args: string[], opts: {env?: NodeJS.ProcessEnv; cwd?: string; wrap?: string[]} = {}) {
  const argv = [process.execPath, '--import', 'tsx', '--no-warnings', FROM_SRC, ...args]
  const [cmd, ...rest] = opts.wrap ? [...opts.wrap, ...argv] : argv
  const r = spawnSync(cmd, rest, {
    encoding: 'utf8',
    cwd: opts.cwd ?? repoRoot,
    env: {...process.env, ...opts.env},
    timeout: 120_000,
  })
  return {code: r.status, out: `${r.stdout}${r.stderr}`}
}

/** An inventory whose tarballs exist (empty files: nothing here reads them). */
function inventoryFile(extra: (t: string) => string = (t) => t): string {
  const d = tmp()
  writeFileSync(join(d, 'etcd.tgz'), '')
  writeFileSync(join(d, 'flannel.tgz'), '')
  const f = join(d, 'inv.yaml')
  writeFileSync(f, extra(minimalInventory()))
  return f
}

function expectInputError(r: {code: number | null; out: string}, message: RegExp) {
  expect(r.out).not.toMatch(/kflan bug|\n\s+at /)
  expect(r.out).toMatch(message)
  expect(r.code).toBe(2)
}

describe('the CLI: exit 2 and a message, never a stack trace', {timeout: 240_000}, () => {
  it('-i on a FIFO and on a device', () => {
    const d = tmp()
    execFileSync('mkfifo', [join(d, 'fifo')])
    expectInputError(
      cli(['validate', '-i', join(d, 'fifo')]),
      /Error: inventory .*fifo is a FIFO: kflan reads only regular files/,
    )
    expectInputError(cli(['validate', '-i', '/dev/zero']), /Error: inventory \/dev\/zero is a device/)
  })

  it('a state directory that is a file; render -o into a file', () => {
    const inv = inventoryFile()
    const d = tmp()
    writeFileSync(join(d, 'file'), '')
    expectInputError(
      cli(['render', '-i', inv, '-o', join(d, 'out'), '--state-dir', join(d, 'file')]),
      /Error: state directory .*file cannot hold files: it is a file/,
    )
    expectInputError(
      cli(['render', '-i', inv, '-o', join(d, 'file/out'), '--state-dir', join(d, 'state')]),
      /Error: output directory .*file\/out cannot hold files: a part of the path is a file/,
    )
    expect(existsSync(join(d, 'state/pki'))).toBe(false) // refused before any certificate was issued
  })

  it.skipIf(!isRoot)(
    'a state directory on a read-only file system (a read-only tmpfs in a private mount namespace)',
    () => {
      const d = tmp()
      const inv = inventoryFile()
      const ro = join(d, 'ro')
      mkdirSync(ro)
      const r = cli(['render', '-i', inv, '-o', join(d, 'out'), '--state-dir', join(ro, 'state')], {
        wrap: ['unshare', '-m', 'sh', '-c', `mount -t tmpfs -o ro tmpfs ${ro} && exec "$@"`, 'sh'],
      })
      expectInputError(r, /Error: state directory .*ro\/state cannot hold files: it is on a read-only file system/)
    },
  )

  it('credentials and --ignore-preflight-errors are refused before any certificate is issued', () => {
    const d = tmp()
    const inv = inventoryFile((t) => t.replace('hosts:\n', `ssh:\n  identityFile: ${d}\nhosts:\n`))
    const r = cli(['init', '-i', inv, '--state-dir', join(d, 'state'), '--dry-run'])
    expectInputError(r, /ssh\.identityFile: identity file .* is a directory/)
    const key = sshKey(d, 'id')
    const inv3 = inventoryFile((t) => t.replace('hosts:\n', `ssh:\n  identityFile: ${key}\nhosts:\n`))
    expectInputError(
      cli(['init', '-i', inv3, '--state-dir', join(d, 'state'), '--dry-run', '--ignore-preflight-errors=Swap']),
      /"Swap" is not a preflight check\n\s+hint: valid names: OS, Systemd, Arch, Tools, Docker, Iptables, Port-2379, Port-2380, Port-8472, or all/,
    )
    expect(existsSync(join(d, 'state/pki'))).toBe(false)
    const inv4 = inventoryFile((t) => t.replace('hosts:\n', 'ssh:\n  passwordEnv: KFLAN_T_UNSET_PW\nhosts:\n'))
    expectInputError(
      cli(['doctor', '-i', inv4, '--state-dir', join(d, 'state')]),
      /ssh\.passwordEnv: SSH password variable KFLAN_T_UNSET_PW is not set/,
    )
  })

  it('known_hosts lines that cannot be parsed are named in a warning (render still works)', () => {
    const d = tmp()
    mkdirSync(join(d, 'state'))
    writeFileSync(join(d, 'state/known_hosts'), '[10.0.0.11]:22 ssh-ed25519\ngarbage here\n')
    const r = cli(['render', '-i', inventoryFile(), '-o', join(d, 'out'), '--state-dir', join(d, 'state')])
    expect(r.out).toMatch(/warning: .*state\/known_hosts:1: cannot parse this line \(fewer than three fields/)
    expect(r.out).toMatch(/warning: .*state\/known_hosts:2: cannot parse this line/)
    expect(r.code).toBe(0)
  })

  it('an alias bomb, a loopback host address and a bastion that is no address: validate', () => {
    const bomb = join(tmp(), 'bomb.yaml')
    const lines = aliasBombLines()
    writeFileSync(bomb, lines.join('\n') + '\n')
    expectInputError(cli(['validate', '-i', bomb]), /bomb\.yaml:1:1: error: YAML: Excessive alias count/)
    const inv = inventoryFile((t) =>
      t.replace('10.0.0.21', '127.0.0.1').replace('hosts:\n', 'ssh:\n  bastion: {address: "jump host;id"}\nhosts:\n'),
    )
    const r = cli(['validate', '-i', inv])
    expectInputError(r, /hosts\[1\]\.address: 127\.0\.0\.1 cannot be a host's address: it is a loopback address/)
    expect(r.out).toMatch(
      /ssh\.bastion\.address: bastion address "jump host;id" is neither an IP address nor a DNS name/,
    )
  })
})
