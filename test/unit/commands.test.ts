/**
 * The commands that need no host (validate, render, certs check), run in-process through oclif
 * (test/unit/run-command.ts): what they print, their exit codes (0; 2 for input errors, with
 * file:line:column, the field and a hint, never a stack trace; 1 for certificate problems) and
 * their --json output. Local files only, in temp dirs.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {lockPath} from '../../src/engine/state-lock.js'
import {minimalInventory} from './helpers.js'
import {type CommandResult, runCommand} from './run-command.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'kflan-cmd-'))

/** minimalInventory() in a temp dir next to (empty) tarballs, so no "file not found" warning. */
function inventory(edit: (text: string) => string = (t) => t): {dir: string; file: string} {
  const dir = tmp()
  writeFileSync(join(dir, 'etcd.tgz'), '')
  writeFileSync(join(dir, 'flannel.tgz'), '')
  const file = join(dir, 'inv.yaml')
  writeFileSync(file, edit(minimalInventory()))
  return {dir, file}
}

function expectInputError(r: CommandResult, message: RegExp) {
  expect(r.error).toBeUndefined()
  expect(r.stderr).not.toMatch(/kflan bug|\n\s+at /)
  expect(r.stderr).toMatch(message)
  expect(r.stderr).toMatch(/\n\s+hint: /)
  expect(r.code).toBe(2)
}

// minimalInventory()'s line 15 is `  network: 10.244.0.0/16`.
const badNetwork = (t: string) => t.replace('network: 10.244.0.0/16', 'network: 10.244.0.0/33')
const badNetworkMessage = /inv\.yaml:15:\d+: error: flannel\.network: .*\n(.|\n)*hint: /

describe('kflan validate', () => {
  it('prints the topology and exits 0', async () => {
    const {file} = inventory()
    const r = await runCommand('validate', ['-i', file])
    expect(r.error).toBeUndefined()
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^cluster t: 3 hosts\n/)
    expect(r.stdout).toMatch(/^m1 +10\.0\.0\.11 +master +etcd +\(by address\)$/m)
    expect(r.stdout).toMatch(/^n1 +10\.0\.0\.21 +node +flanneld docker +\(by address\)$/m)
    expect(r.stdout).toMatch(/^etcd 3\.4\.23: https:\/\/10\.0\.0\.11:2379$/m)
    expect(r.stdout).toMatch(/^flannel 0\.26\.1: network 10\.244\.0\.0\/16, /m)
  })

  it('--json prints the topology as JSON, and only that', async () => {
    const {file} = inventory()
    const r = await runCommand('validate', ['-i', file, '--json'])
    expect(r.code).toBe(0)
    const json = JSON.parse(r.stdout) as {cluster: string; hosts: {host: string; runs: string}[]}
    expect(json).toEqual(r.result)
    expect(json.cluster).toBe('t')
    expect(json.hosts.map((h) => `${h.host}:${h.runs}`)).toEqual([
      'm1:etcd',
      'n1:flanneld docker',
      'n2:flanneld docker',
    ])
  })

  it('a bad field: exit 2 with file:line:column, the field and a hint', async () => {
    const {file} = inventory(badNetwork)
    const r = await runCommand('validate', ['-i', file])
    expectInputError(r, badNetworkMessage)
    expect(r.stdout).toBe('')
  })

  it('a bad field with --json: exit 2, the same message on stderr, the error as JSON on stdout', async () => {
    const {file} = inventory(badNetwork)
    const r = await runCommand('validate', ['-i', file, '--json'])
    expectInputError(r, badNetworkMessage)
    const json = JSON.parse(r.stdout) as {error: {exitCode: number; hint: string; message: string}}
    expect(json.error.exitCode).toBe(2)
    expect(json.error.message).toMatch(/inv\.yaml:15:\d+: error: flannel\.network: /)
    expect(json.error.hint).toMatch(/^fix the fields above/)
  })

  it('every problem at once, each with its line', async () => {
    const {file} = inventory((t) => badNetwork(t).replace('address: 10.0.0.21', 'address: 10.0.0.300'))
    const r = await runCommand('validate', ['-i', file])
    expectInputError(r, /2 problems in the inventory/)
    expect(r.stderr).toMatch(/inv\.yaml:4:\d+: error: hosts\[1\]\.address: /)
    expect(r.stderr).toMatch(badNetworkMessage)
  })

  it('a tarball that does not exist yet is a warning (exit 0)', async () => {
    const {dir, file} = inventory()
    const r = await runCommand('validate', ['-i', file])
    expect(r.code).toBe(0)
    writeFileSync(file, minimalInventory().replace('tarball: etcd.tgz', 'tarball: later.tgz'))
    const w = await runCommand('validate', ['-i', file])
    expect(w.code).toBe(0)
    expect(w.stderr).toMatch(/inv\.yaml:11:\d+: warning: etcd\.tarball: .*later\.tgz/)
    expect(w.stdout).toMatch(/^cluster t: 3 hosts/)
    expect(readdirSync(dir).sort()).toEqual(['etcd.tgz', 'flannel.tgz', 'inv.yaml'])
  })

  it('no -i, an unknown flag, a missing file: exit 2, no stack trace', async () => {
    const none = await runCommand('validate', [])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/Missing required flag inventory/)
    const unknown = await runCommand('validate', ['-i', 'x.yaml', '--bogus'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/Nonexistent flag: --bogus/)
    expectInputError(await runCommand('validate', ['-i', join(tmp(), 'nope.yaml')]), /nope\.yaml/)
  })
})

describe('kflan render and kflan certs check', {timeout: 240_000}, () => {
  it('render writes every host, reuses its PKI on a second run; certs check reads it back', async () => {
    const {dir, file} = inventory()
    const state = join(dir, 'state')
    const out = join(dir, 'out')
    const first = await runCommand('render', ['-i', file, '-o', out, '--state-dir', state])
    expect(first.error).toBeUndefined()
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^pki: /m)
    expect(first.stdout).toMatch(new RegExp(`^wrote \\d+ files for 3 hosts to ${out} \\(PKI in ${state}/pki\\)$`, 'm'))
    expect(readdirSync(out).sort()).toEqual(['_etcd', 'm1', 'n1', 'n2'])
    const unit = readFileSync(join(out, 'm1/etc/systemd/system/etcd.service'), 'utf8')
    expect(unit).toMatch(/--cert-file=\/opt\/etcd\/ssl\/server\.pem/)

    // The state dir stays locked until the process exits: a second run meanwhile is refused.
    const locked = await runCommand('render', ['-i', file, '-o', join(dir, 'out3'), '--state-dir', state])
    expect(locked.code).toBe(1)
    expect(locked.stderr).toMatch(new RegExp(`Error: .*${state}.* PID ${process.pid} `))
    expect(locked.stderr).toMatch(/\n\s+hint: /)
    rmSync(lockPath(state)) // what the CLI's process exit does

    // The same inventory renders the same bytes: the PKI is reused.
    const out2 = join(dir, 'out2')
    const second = await runCommand('render', ['-i', file, '-o', out2, '--state-dir', state])
    expect(second.code).toBe(0)
    expect(readFileSync(join(out2, 'm1/etc/systemd/system/etcd.service'), 'utf8')).toBe(unit)
    expect(readFileSync(join(out2, 'n1/opt/flannel/ssl/flanneld.pem'), 'utf8')).toBe(
      readFileSync(join(out, 'n1/opt/flannel/ssl/flanneld.pem'), 'utf8'),
    )

    const check = await runCommand('certs check', ['-i', file, '--state-dir', state])
    expect(check.error).toBeUndefined()
    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/^NAME +SUBJECT +SANS +USAGES +EXPIRES +DAYS +STATUS$/m)
    expect(check.stdout).toMatch(/^server-m1 +\S+ +\S*10\.0\.0\.11\S* +\S+ +\d{4}-\d\d-\d\d +\d+ +ok$/m)
    expect(check.stdout).toMatch(/^flanneld +.* ok$/m)

    const json = await runCommand('certs check', ['-i', file, '--state-dir', state, '--json'])
    expect(json.code).toBe(0)
    const parsed = JSON.parse(json.stdout) as {ok: boolean; certificates: {name: string; problems: string[]}[]}
    expect(parsed.ok).toBe(true)
    expect(parsed.certificates.map((c) => c.name)).toEqual(
      expect.arrayContaining(['ca', 'server-m1', 'peer-m1', 'flanneld']),
    )
    expect(parsed.certificates.every((c) => c.problems.length === 0)).toBe(true)

    // m1 moves to a new address: its server certificate no longer covers it (exit 1, with a hint).
    const moved = join(dir, 'moved.yaml')
    writeFileSync(moved, minimalInventory().replace('address: 10.0.0.11', 'address: 10.0.0.12'))
    const stale = await runCommand('certs check', ['-i', moved, '--state-dir', state])
    expect(stale.code).toBe(1)
    expect(stale.stdout).toMatch(/^server-m1 .*SANs lack IP:10\.0\.0\.12/m)
    expect(stale.stderr).toMatch(/Error: \d+ certificate\(s\) with problems\n\s+hint: run `kflan init`/)
    expect(stale.stderr).not.toMatch(/kflan bug|\n\s+at /)
    const staleJson = await runCommand('certs check', ['-i', moved, '--state-dir', state, '--json'])
    expect(staleJson.code).toBe(1)
    const bad = JSON.parse(staleJson.stdout) as {ok: boolean; certificates: {name: string; problems: string[]}[]}
    expect(bad.ok).toBe(false)
    expect(bad.certificates.find((c) => c.name === 'server-m1')?.problems).toEqual(['SANs lack IP:10.0.0.12'])

    // A lost CA key (a PkiError, which is a KflanError): message and hint, exit 1, nothing written.
    rmSync(lockPath(state)) // the second render's process has exited
    rmSync(join(state, 'pki/ca-key.pem'))
    const lost = await runCommand('render', ['-i', file, '-o', join(dir, 'out4'), '--state-dir', state])
    expect(lost.error).toBeUndefined()
    expect(lost.code).toBe(1)
    expect(lost.stderr).toMatch(/^Error: the CA key .*ca-key\.pem is missing\n\s+hint: restore it from a backup/m)
    expect(lost.stderr).not.toMatch(/kflan bug|\n\s+at /)
    expect(readdirSync(join(dir, 'out4'))).toEqual([])
  })

  it('certs check without a PKI: exit 1 and a hint to render or init first', async () => {
    const {dir, file} = inventory()
    const r = await runCommand('certs check', ['-i', file, '--state-dir', join(dir, 'empty')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /Error: no certificates in .*empty\/pki\n\s+hint: run `kflan init` or `kflan render` first/,
    )
  })

  it('render: bad input is exit 2 before any certificate is issued', async () => {
    const {dir, file} = inventory(badNetwork)
    const state = join(dir, 'state')
    expectInputError(
      await runCommand('render', ['-i', file, '-o', join(dir, 'out'), '--state-dir', state]),
      badNetworkMessage,
    )
    const good = inventory()
    writeFileSync(join(good.dir, 'file'), '')
    const r = await runCommand('render', ['-i', good.file, '-o', join(good.dir, 'file/out'), '--state-dir', state])
    expectInputError(r, /output directory/)
    expect(readdirSync(dir).sort()).toEqual(['etcd.tgz', 'flannel.tgz', 'inv.yaml'])
    expect(readdirSync(good.dir).sort()).toEqual(['etcd.tgz', 'file', 'flannel.tgz', 'inv.yaml'])
    const none = await runCommand('render', ['-i', good.file])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/Missing required flag output/)
  })
})
