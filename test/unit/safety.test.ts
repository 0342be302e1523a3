/** Interrupts, the state-dir lock, journal excerpts and etcd roles: the pure parts. */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {desiredAuth, parseAuthState, planAuth, prefixEnd} from '../../src/cluster/etcd-auth.js'
import {parseInitialCluster} from '../../src/cluster/etcdctl.js'
import {InterruptedError, signalExitCode} from '../../src/engine/interrupt.js'
import {acquireStateLock, type LockInfo, lockPath, lockState, procStartOf} from '../../src/engine/state-lock.js'
import {journalExcerpt} from '../../src/remote/journal.js'
import {exampleCluster} from './helpers.js'

describe('stop signals', () => {
  it('exit 130 for SIGINT and 143 for SIGTERM, carried by the error', () => {
    expect(signalExitCode('SIGINT')).toBe(130)
    expect(signalExitCode('SIGTERM')).toBe(143)
    expect(new InterruptedError('SIGTERM').exitCode).toBe(143)
    expect(new InterruptedError('SIGINT').message).toMatch(/interrupted by SIGINT/)
  })
})

describe('state directory lock', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'kflan-lock-'))

  it('writes the holder (PID, host, command, start) and refuses a second holder while it runs', () => {
    const d = dir()
    const lock = acquireStateLock(d, 'kflan init -i a.yaml')
    const info = JSON.parse(readFileSync(lockPath(d), 'utf8')) as LockInfo
    expect(info).toMatchObject({pid: process.pid, host: hostname(), command: 'kflan init -i a.yaml'})
    expect(Date.parse(info.started)).not.toBeNaN()
    // A live process holds a lock the same way: a child node that holds it for a while.
    lock.release()
    expect(existsSync(lockPath(d))).toBe(false)
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
    const procStart = procStartOf(child.pid!)
    writeFileSync(
      lockPath(d),
      JSON.stringify({
        pid: child.pid,
        host: hostname(),
        command: 'kflan reset -i b.yaml',
        started: '2026-12-01T10:00:00Z',
        procStart,
      }),
    )
    try {
      expect(() => acquireStateLock(d, 'kflan init')).toThrow(
        new RegExp(`another kflan run holds the state directory .*PID ${child.pid} on .*kflan reset -i b.yaml`),
      )
    } finally {
      child.kill()
    }
  })

  it('takes over a stale lock (dead PID, reused PID) and says whose it was', () => {
    const d = dir()
    // A PID that surely ran and is gone: a child that already exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout
    writeFileSync(
      lockPath(d),
      JSON.stringify({pid: Number(dead), host: hostname(), command: 'kflan init', started: '2026-12-01T10:00:00Z'}),
    )
    const lock = acquireStateLock(d, 'kflan join node n1')
    expect(lock.tookOver).toMatchObject({pid: Number(dead), command: 'kflan init'})
    expect(JSON.parse(readFileSync(lockPath(d), 'utf8')).pid).toBe(process.pid)
    lock.release()
    const probes = {host: 'm', alive: () => true, procStartOf: () => '999'}
    expect(lockState({pid: 5, host: 'm', command: 'x', started: '', procStart: '123'}, probes)).toBe('stale')
    expect(lockState({pid: 5, host: 'm', command: 'x', started: '', procStart: '999'}, probes)).toBe('held')
    expect(lockState({pid: 5, host: 'other', command: 'x', started: ''}, probes)).toBe('foreign')
    expect(lockState({pid: 5, host: 'm', command: 'x', started: ''}, {...probes, alive: () => false})).toBe('stale')
  })

  it('never takes over a lock from another machine; an unwritable state dir is an input error', () => {
    const d = dir()
    writeFileSync(lockPath(d), JSON.stringify({pid: 1, host: 'elsewhere', command: 'kflan init', started: 's'}))
    expect(() => acquireStateLock(d, 'kflan init')).toThrow(/on elsewhere/)
    const file = join(d, 'a-file')
    writeFileSync(file, '')
    let err: unknown
    try {
      acquireStateLock(file, 'kflan init')
    } catch (error) {
      err = error
    }

    expect((err as {exitCode: number}).exitCode).toBe(2)
    expect((err as Error).message).toMatch(/cannot lock the state directory/)
  })
})

describe('journal excerpts for failed services', () => {
  it('quotes the lines that say why, zap JSON shortened to msg and error', () => {
    const text = [
      '{"level":"info","ts":"2026-12-01T16:00:00Z","caller":"embed/etcd.go:1","msg":"configuring peer listeners"}',
      '{"level":"fatal","ts":"2026-12-01T16:00:01Z","caller":"etcdmain/etcd.go:204","msg":"discovery failed","error":"open /var/lib/etcd/member/snap/db: no space left on device"}',
      'etcd.service: Main process exited, code=exited, status=1/FAILURE',
      "etcd.service: Failed with result 'exit-code'.",
    ].join('\n')
    const out = journalExcerpt(text)
    expect(out[0]).toBe('fatal: discovery failed: open /var/lib/etcd/member/snap/db: no space left on device')
    expect(out).toEqual([out[0], "etcd.service: Failed with result 'exit-code'."])
    expect(out.join('\n')).not.toContain('configuring peer listeners')
  })

  it('keeps capnslog text lines and falls back to the last lines when none looks like a failure', () => {
    expect(
      journalExcerpt('a\netcdmain: cannot access data directory: mkdir /var/lib/etcd: permission denied\nb\n'),
    ).toEqual(['etcdmain: cannot access data directory: mkdir /var/lib/etcd: permission denied'])
    expect(journalExcerpt('one\ntwo\nthree\n', 2)).toEqual(['two', 'three'])
    expect(journalExcerpt('-- No entries --\n')).toEqual([])
  })
})

describe('etcd roles (least privilege)', () => {
  const c = exampleCluster('ha')
  const desired = desiredAuth(c)
  // Output of authStateScript against a real etcd 3.4.23 (probe, users, role), as etcdctl prints it.
  const fresh = [
    '@@kflan-auth probe',
    '{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: code = FailedPrecondition desc = etcdserver: authentication is not enabled"}',
    ...[...desired.users.keys()].flatMap((u) => [`@@kflan-auth user ${u}`, 'Error: etcdserver: user name not found']),
    '@@kflan-auth role flannel',
    'Error: etcdserver: role name not found',
  ].join('\n')
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  const converged = [
    '@@kflan-auth probe',
    'Error: etcdserver: authentication failed, invalid user ID or password',
    ...[...desired.users].flatMap(([u, roles]) => [`@@kflan-auth user ${u}`, JSON.stringify({header: {}, roles})]),
    '@@kflan-auth role flannel',
    JSON.stringify({
      header: {},
      perm: [
        {key: b64('/coreos.com/network/config')},
        // eslint-disable-next-line camelcase -- etcd's own JSON field name
        {permType: 2, key: b64('/coreos.com/network/subnets'), range_end: b64('/coreos.com/network/subnett')},
      ],
    }),
  ].join('\n')

  it('gives flanneld read on the config and read/write on the leases only; members and the admin CN get root', () => {
    expect(desired.roles.get('flannel')).toEqual([
      {type: 'read', key: '/coreos.com/network/config', prefix: false},
      {type: 'readwrite', key: '/coreos.com/network/subnets', prefix: true},
    ])
    expect(desired.users.get('flanneld')).toEqual(['flannel'])
    expect(desired.users.get('kflan')).toEqual(['root'])
    for (const m of c.hosts.filter((h) => h.roles.etcd)) expect(desired.users.get(m.name)).toEqual(['root'])
    expect(prefixEnd('/coreos.com/network/subnets')).toBe('/coreos.com/network/subnett')
  })

  it('plans users, the role and auth enable (last) on a cluster without auth, and nothing once converged', () => {
    const steps = planAuth(desired, parseAuthState(fresh))
    expect(steps.at(-1)!.args).toBe('auth enable')
    expect(steps.map((s) => s.args)).toContain(
      'role grant-permission flannel readwrite /coreos.com/network/subnets --prefix',
    )
    expect(steps.map((s) => s.args)).toContain('user add flanneld --no-password')
    expect(steps.filter((s) => s.args.startsWith('user add')).length).toBe(desired.users.size)
    const state = parseAuthState(converged)
    expect(state.enabled).toBe(true)
    expect(planAuth(desired, state)).toEqual([])
  })

  it('revokes what kflan did not grant on its own role and user, and leaves others alone', () => {
    const widened = converged
      .replace('"perm":[', `"perm":[{"permType":1,"key":"${b64('/')}","range_end":"${b64('0')}"},`)
      .replace('{"header":{},"roles":["flannel"]}', '{"header":{},"roles":["flannel","root"]}')
    const steps = planAuth(desired, parseAuthState(widened)).map((s) => s.args)
    expect(steps).toEqual(['role revoke-permission flannel / --prefix', 'user revoke-role flanneld root'])
    expect(() => parseAuthState('@@kflan-auth probe\nError: context deadline exceeded')).toThrow(
      /cannot tell whether etcd authentication is on/,
    )
  })
})

describe('etcd member add output', () => {
  it('gives the initial cluster the new member starts with', () => {
    const out =
      'Member d8b71f87b4e12530 added to cluster 825c00a8de1a0b1b\n\nETCD_NAME="lab-m2"\nETCD_INITIAL_CLUSTER="lab-m1=https://10.211.5.11:2380,lab-m2=https://10.211.5.12:2380"\nETCD_INITIAL_ADVERTISE_PEER_URLS="https://10.211.5.12:2380"\nETCD_INITIAL_CLUSTER_STATE="existing"\n'
    expect(parseInitialCluster(out)).toBe('lab-m1=https://10.211.5.11:2380,lab-m2=https://10.211.5.12:2380')
    expect(parseInitialCluster('Member added\n')).toBeUndefined()
  })
})
