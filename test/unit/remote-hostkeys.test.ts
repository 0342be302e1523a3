import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {HostKeyError} from '../../src/remote/errors.js'
import {decideHostKey, hostKeyAlgorithmsFor, hostKeyError} from '../../src/remote/hostkey-trust.js'
import {
  entriesForHost,
  fingerprintSha256,
  hostsFieldMatches,
  keyTypeOf,
  knownHostId,
  normalizeFingerprint,
  parseKnownHosts,
  readKnownHosts,
  recordHostKey,
} from '../../src/remote/hostkeys.js'

let dir: string
const keys: Record<string, {blob: Buffer; pub: string; fp: string; type: string}> = {}

function genKey(name: string, type: string, extra: string[] = []) {
  const f = path.join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', type, ...extra, '-N', '', '-C', 'kflan-test', '-f', f])
  const pub = readFileSync(`${f}.pub`, 'utf8').trim()
  const [keyType, b64] = pub.split(' ')
  const fp = execFileSync('ssh-keygen', ['-lf', `${f}.pub`], {encoding: 'utf8'}).split(' ')[1]
  keys[name] = {blob: Buffer.from(b64, 'base64'), pub, fp, type: keyType}
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kflan-hostkeys-'))
  genKey('ed', 'ed25519')
  genKey('ed2', 'ed25519')
  genKey('rsa', 'rsa', ['-b', '2048'])
  genKey('ecdsa', 'ecdsa')
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('fingerprints', () => {
  it('matches ssh-keygen -lf for ed25519, rsa and ecdsa keys', () => {
    for (const k of Object.values(keys)) {
      expect(fingerprintSha256(k.blob)).toBe(k.fp)
      expect(k.fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
    }
  })

  it('reads the key type from the blob', () => {
    expect(keyTypeOf(keys.ed.blob)).toBe('ssh-ed25519')
    expect(keyTypeOf(keys.rsa.blob)).toBe('ssh-rsa')
    expect(keyTypeOf(keys.ecdsa.blob)).toBe('ecdsa-sha2-nistp256')
    expect(() => keyTypeOf(Buffer.from([0, 0]))).toThrow()
  })

  it('normalizes user-written fingerprints', () => {
    const {fp} = keys.ed
    expect(normalizeFingerprint(fp)).toBe(fp)
    expect(normalizeFingerprint(`  ${fp}=  `)).toBe(fp)
    expect(normalizeFingerprint(fp.slice(7))).toBe(fp)
  })
})

describe('known_hosts parsing', () => {
  it('parses plain, port, marker, comment and hashed lines', () => {
    const text = [
      '# a comment',
      '',
      `10.0.0.1 ${keys.ed.pub}`,
      `[10.0.0.2]:2222,alias ${keys.rsa.type} ${keys.rsa.blob.toString('base64')}`,
      `@revoked * ${keys.ed2.type} ${keys.ed2.blob.toString('base64')}`,
      '@unknown-marker x ssh-ed25519 AAAA',
      'garbage',
    ].join('\n')
    const e = parseKnownHosts(text)
    expect(e).toHaveLength(3)
    expect(e[0]).toMatchObject({line: 3, hosts: '10.0.0.1', keyType: 'ssh-ed25519'})
    expect(e[1]).toMatchObject({line: 4, hosts: '[10.0.0.2]:2222,alias', keyType: 'ssh-rsa'})
    expect(e[2]).toMatchObject({line: 5, marker: '@revoked'})
    expect(entriesForHost(e, knownHostId('10.0.0.2', 2222))).toHaveLength(2) // its own line + the revoked wildcard
    expect(entriesForHost(e, '10.0.0.2')).toHaveLength(1) // only the revoked wildcard
  })

  it('host ids follow OpenSSH: bare on 22, [addr]:port otherwise', () => {
    expect(knownHostId('10.0.0.1', 22)).toBe('10.0.0.1')
    expect(knownHostId('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222')
  })

  it('matches wildcards, negations and entries hashed by ssh-keygen -H', () => {
    expect(hostsFieldMatches('10.0.0.*,!10.0.0.5', '10.0.0.4')).toBe(true)
    expect(hostsFieldMatches('10.0.0.*,!10.0.0.5', '10.0.0.5')).toBe(false)
    expect(hostsFieldMatches('10.0.0.?', '10.0.0.10')).toBe(false)
    const f = path.join(dir, 'hashed')
    writeFileSync(f, `[10.9.9.9]:2200 ${keys.ed.pub}\n`)
    execFileSync('ssh-keygen', ['-H', '-f', f], {stdio: 'ignore'})
    const e = parseKnownHosts(readFileSync(f, 'utf8'))
    expect(e[0].hosts.startsWith('|1|')).toBe(true)
    expect(hostsFieldMatches(e[0].hosts, '[10.9.9.9]:2200')).toBe(true)
    expect(hostsFieldMatches(e[0].hosts, '10.9.9.9')).toBe(false)
  })

  it('offers the host key algorithms of recorded keys', () => {
    const e = parseKnownHosts(`h ${keys.rsa.pub}\nh ${keys.ed.pub}\n`)
    expect(hostKeyAlgorithmsFor(e, 'h')).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519'])
    expect(hostKeyAlgorithmsFor(e, 'other')).toBeUndefined()
  })
})

describe('host key decisions', () => {
  it('takes a changed key that the inventory pins, replacing the recorded lines (a re-made host, re-pinned)', () => {
    const id2 = '[10.211.0.11]:22'
    const entries = parseKnownHosts(`${id2} ${keys.ed.pub}\nother ${keys.rsa.pub}\n${id2} ${keys.rsa.pub}\n`)
    expect(decideHostKey({entries, hostId: id2, key: keys.ed2.blob, pin: keys.ed2.fp})).toMatchObject({
      ok: true,
      action: 'repinned',
      replaces: [1, 3],
    })
    // A line shared with other hosts or a wildcard is the user's: not rewritten, so still refused.
    const shared = parseKnownHosts(`${id2},other ${keys.ed.pub}\n`)
    expect(decideHostKey({entries: shared, hostId: id2, key: keys.ed2.blob, pin: keys.ed2.fp})).toMatchObject({
      ok: false,
      problem: 'changed',
    })
  })

  const id = '[10.211.0.11]:22'
  const known = () => parseKnownHosts(`${id} ${keys.ed.pub}\n`)

  it('accepts a recorded key', () => {
    expect(decideHostKey({entries: known(), hostId: id, key: keys.ed.blob})).toMatchObject({ok: true, action: 'known'})
  })

  it('refuses an unknown host by default', () => {
    expect(decideHostKey({entries: [], hostId: id, key: keys.ed.blob})).toMatchObject({
      ok: false,
      problem: 'unknown',
      fingerprint: keys.ed.fp,
    })
  })

  it('accepts an unknown host whose fingerprint matches the inventory pin', () => {
    expect(decideHostKey({entries: [], hostId: id, key: keys.ed.blob, pin: keys.ed.fp})).toMatchObject({
      ok: true,
      action: 'pinned',
    })
    expect(decideHostKey({entries: [], hostId: id, key: keys.ed.blob, pin: keys.ed2.fp})).toMatchObject({
      ok: false,
      problem: 'pin-mismatch',
    })
    expect(
      decideHostKey({entries: [], hostId: id, key: keys.ed.blob, pin: keys.ed2.fp, acceptNew: true}),
    ).toMatchObject({ok: false, problem: 'pin-mismatch'})
  })

  it('accepts an unknown host with acceptNew', () => {
    expect(decideHostKey({entries: [], hostId: id, key: keys.ed.blob, acceptNew: true})).toMatchObject({
      ok: true,
      action: 'accept-new',
    })
  })

  it('refuses a changed key, even with acceptNew or a pin of the old key', () => {
    for (const extra of [{}, {acceptNew: true}, {pin: keys.ed.fp}, {pin: keys.ed.fp, acceptNew: true}]) {
      const d = decideHostKey({entries: known(), hostId: id, key: keys.ed2.blob, ...extra})
      expect(d).toMatchObject({ok: false, problem: 'changed', lines: [1]})
    }

    // A key of another type than the recorded one is a change too.
    expect(decideHostKey({entries: known(), hostId: id, key: keys.rsa.blob, acceptNew: true})).toMatchObject({
      ok: false,
      problem: 'changed',
    })
  })

  it('refuses a revoked key', () => {
    const e = parseKnownHosts(`@revoked * ${keys.ed.pub}\n`)
    expect(decideHostKey({entries: e, hostId: id, key: keys.ed.blob, acceptNew: true})).toMatchObject({
      ok: false,
      problem: 'revoked',
    })
  })

  it('explains a changed key: MITM, reinstall, which line of which file', () => {
    const d = decideHostKey({entries: known(), hostId: id, key: keys.ed2.blob})
    if (d.ok) throw new Error('expected refusal')
    const err = hostKeyError({host: 'm1', hostId: id, decision: d, knownHostsPath: '/state/known_hosts'})
    expect(err).toBeInstanceOf(HostKeyError)
    expect(err.problem).toBe('changed')
    expect(err.message).toContain('HOST KEY CHANGED')
    expect(err.message).toContain(keys.ed2.fp)
    expect(err.hint).toMatch(/man-in-the-middle/)
    expect(err.hint).toMatch(/reinstalled/)
    expect(err.hint).toContain('remove line 1 from /state/known_hosts')
  })

  it('explains an unknown key with the fingerprint to pin', () => {
    const d = decideHostKey({entries: [], hostId: id, key: keys.ed.blob})
    if (d.ok) throw new Error('expected refusal')
    const err = hostKeyError({host: 'm1', hostId: id, decision: d, knownHostsPath: '/k'})
    expect(err.hint).toContain(`hostKey: ${keys.ed.fp}`)
    expect(err.hint).toContain('ssh_host_ed25519_key.pub')
  })
})

describe('recording host keys', () => {
  it('replaces the old lines of a re-pinned host and keeps every other line', async () => {
    const f = path.join(dir, 'repin', 'known_hosts')
    await recordHostKey(f, '10.211.0.11', keys.ed.blob)
    await recordHostKey(f, '10.211.0.12', keys.rsa.blob)
    const before = await readKnownHosts(f)
    const d = decideHostKey({entries: before, hostId: '10.211.0.11', key: keys.ed2.blob, pin: keys.ed2.fp})
    expect(d).toMatchObject({ok: true, action: 'repinned', replaces: [1]})
    await recordHostKey(f, '10.211.0.11', keys.ed2.blob, 'kflan:m1', d.ok && d.action === 'repinned' ? d.replaces : [])
    const after = await readKnownHosts(f)
    expect(after.map((e) => e.key)).toEqual([keys.rsa.blob.toString('base64'), keys.ed2.blob.toString('base64')])
    expect(decideHostKey({entries: after, hostId: '10.211.0.11', key: keys.ed2.blob})).toMatchObject({
      ok: true,
      action: 'known',
    })
    expect(statSync(f).mode & 0o777).toBe(0o600)
  })

  it('appends atomically with mode 0600, without duplicates, readable by ssh-keygen -F', async () => {
    const f = path.join(dir, 'state', 'known_hosts')
    await recordHostKey(f, '[10.211.0.11]:2222', keys.ed.blob, 'kflan:m1')
    await recordHostKey(f, '[10.211.0.11]:2222', keys.ed.blob, 'kflan:m1')
    await Promise.all([
      recordHostKey(f, '10.211.0.12', keys.rsa.blob),
      recordHostKey(f, '10.211.0.13', keys.ecdsa.blob),
    ])
    const text = readFileSync(f, 'utf8')
    expect(text.trim().split('\n')).toHaveLength(3)
    expect(statSync(f).mode & 0o777).toBe(0o600)
    const entries = await readKnownHosts(f)
    expect(decideHostKey({entries, hostId: '[10.211.0.11]:2222', key: keys.ed.blob})).toMatchObject({
      ok: true,
      action: 'known',
    })
    // OpenSSH reads our file.
    const found = execFileSync('ssh-keygen', ['-F', '[10.211.0.11]:2222', '-f', f], {encoding: 'utf8'})
    expect(found).toContain(keys.ed.blob.toString('base64'))
  })

  it('treats a missing file as empty', async () => {
    expect(await readKnownHosts(path.join(dir, 'nope'))).toEqual([])
  })
})
