/**
 * The SSH layer against real lab hosts: host keys, exec, sudo, atomic writes, uploads, facts,
 * unreachable hosts, bastions. Reuses a running lab (never tears down one it did not bring up);
 * otherwise brings up 1 master + 1 node and takes them down at the end.
 *
 * Everything this file leaves on a host lives under /var/tmp/kflan-remote-e2e (its own kflan
 * state dir included) and in two test users, all removed in afterAll.
 */
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'

import {factsScript, gatherFacts} from '../../src/host/facts.js'
import {interfaceWithAddress} from '../../src/host/net.js'
import {AuthError, HostKeyError, RemoteCommandError, UnreachableHostError} from '../../src/remote/errors.js'
import {readRemoteFile, writeFile, writeFiles} from '../../src/remote/files.js'
import {readKnownHosts} from '../../src/remote/hostkeys.js'
import {FileLogger, MemoryLogger} from '../../src/remote/logger.js'
import {closeAll, type ConnectOptions, Remote, type TargetSpec} from '../../src/remote/ssh.js'
import {installFromTarball, uploadFile} from '../../src/remote/upload.js'
import {LAB, labDown, type LabHost, labUp, readHosts, requireLab, sshExec} from './lab-helpers.js'
import {connectAll} from './remote-helpers.js'

const BASE = '/var/tmp/kflan-remote-e2e'
const STATE = `${BASE}/state`
const USER_NOPW = 'kflane2e-nopw'
const USER_PW = 'kflane2e-pw'
const USER_NOSUDO = 'kflane2e-nosudo'
const SUDO_PW = `Pw-${randomBytes(6).toString('hex')}`
/** An address on this lab's own bridge that no host has (lab N: 10.211.N.0/24, docs/lab.md). */
const LAB_ID = process.env.KFLAN_LAB_ID ?? '0'
const UNUSED_ADDRESS = `10.211.${LAB_ID}.250`
/** The lab's etcd bundle (test/lab/bundles.sh) and its version, from the running lab's inventory. */
const etcdBundle = (): {tarball: string; version: string} => parseYaml(readFileSync(LAB.inventory, 'utf8')).etcd

/** A lab that is up and answers SSH on its first two hosts. */
async function runningLab(): Promise<LabHost[] | undefined> {
  if (!existsSync(LAB.hostsJson)) return undefined
  const hosts = readHosts()
  if (hosts.length === 0) return undefined
  const ok = await Promise.all(
    hosts.slice(0, 2).map((h) => sshExec(h, 'true', {check: false, timeoutMs: 10_000}).then((r) => r.code === 0)),
  )
  return ok.every(Boolean) ? hosts : undefined
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

describe.skipIf(!requireLab())('remote: the SSH layer on lab hosts', () => {
  let ownLab = false
  let hosts: LabHost[] = []
  let h: LabHost
  let h2: LabHost
  let work: string
  let logFile: string
  const memLog = new MemoryLogger()
  let fileLog: FileLogger
  const opened: Remote[] = []
  const report: string[] = []

  const target = (lh: LabHost, extra: Partial<TargetSpec> = {}): TargetSpec => ({
    name: lh.name,
    address: lh.address,
    port: 22,
    user: 'root',
    identityFile: LAB.key,
    ...extra,
  })
  const logger = {
    log(host: string, e: Parameters<FileLogger['log']>[1]) {
      memLog.log(host, e)
      fileLog.log(host, e)
    },
  }
  const opts = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
    knownHostsPath: path.join(work, 'known_hosts'),
    logger,
    ...extra,
  })
  const connect = async (t: TargetSpec, o: Partial<ConnectOptions> = {}) => {
    const r = await Remote.connect(t, opts(o))
    opened.push(r)
    return r
  }

  /** A connection to lab host h, trusted through the inventory fingerprint. */
  let root: Remote

  beforeAll(async () => {
    const running = await runningLab()
    if (running) hosts = running
    else {
      hosts = await labUp({masters: 1, nodes: 1})
      ownLab = true
    }

    ;[h, h2] = hosts
    work = mkdtempSync(path.join(tmpdir(), 'kflan-remote-e2e-'))
    logFile = path.join(work, 'logs', 'commands.log')
    fileLog = new FileLogger(logFile)
    root = await connect(target(h, {hostKey: h.hostKey}))
    await root.run(`rm -rf ${BASE} && mkdir -p ${BASE}`)
  })

  afterAll(async () => {
    try {
      for (const x of hosts) await sshExec(x, `rm -rf ${BASE}`, {check: false, timeoutMs: 20_000})
      if (root?.isConnected) {
        await root.exec(
          `rm -rf ${BASE}; for u in ${USER_NOPW} ${USER_PW} ${USER_NOSUDO}; do userdel -r $u 2>/dev/null; done; rm -f /etc/sudoers.d/${USER_NOPW} /etc/sudoers.d/${USER_PW} /etc/ssh/sshd_config.d/00-kflan-remote-e2e.conf; systemctl reload ssh 2>/dev/null || true`,
        )
      }

      await closeAll(opened)
      fileLog?.close()
      if (report.length > 0) console.log(`\n== remote e2e measurements ==\n${report.join('\n')}\n`)
    } finally {
      if (work) rmSync(work, {recursive: true, force: true})
      // Take down only the lab this file brought up: another engineer may have replaced it since.
      if (
        ownLab &&
        existsSync(LAB.hostsJson) &&
        JSON.stringify(readHosts().map((x) => x.pid)) === JSON.stringify(hosts.map((x) => x.pid))
      )
        await labDown()
    }
  })

  describe('host keys', () => {
    it('refuses an unknown host and records nothing', async () => {
      const kh = path.join(work, 'kh-unknown')
      const err = await Remote.connect(target(h), {knownHostsPath: kh}).catch((error) => error)
      expect(err).toBeInstanceOf(HostKeyError)
      expect(err.problem).toBe('unknown')
      expect(err.fingerprint).toBe(h.hostKey)
      expect(err.hint).toContain(`hostKey: ${h.hostKey}`)
      expect(existsSync(kh)).toBe(false)
    })

    it('accepts the inventory fingerprint and records it; then the host is known', async () => {
      const kh = path.join(work, 'kh-pinned')
      const r = await connect(target(h, {hostKey: h.hostKey}), {knownHostsPath: kh})
      expect(r.hostKey).toMatchObject({action: 'pinned', fingerprint: h.hostKey, keyType: 'ssh-ed25519'})
      expect((await readKnownHosts(kh)).map((e) => `${e.hosts} ${e.keyType} ${e.key}`)).toEqual([h.hostKeyLine])
      const again = await connect(target(h), {knownHostsPath: kh})
      expect(again.hostKey.action).toBe('known')
    })

    it('refuses a fingerprint that differs from the inventory', async () => {
      const err = await Remote.connect(target(h, {hostKey: h2.hostKey}), {
        knownHostsPath: path.join(work, 'kh-mismatch'),
        acceptNew: true,
      }).catch((error) => error)
      expect(err).toBeInstanceOf(HostKeyError)
      expect(err.problem).toBe('pin-mismatch')
    })

    it('records a new host with acceptNew, in a file OpenSSH reads', async () => {
      const kh = path.join(work, 'kh-accept')
      const r = await connect(target(h), {knownHostsPath: kh, acceptNew: true})
      expect(r.hostKey.action).toBe('accept-new')
      const out = execFileSync('ssh-keygen', ['-F', h.address, '-f', kh], {encoding: 'utf8'})
      expect(out).toContain(h.hostKeyLine.split(' ')[2])
      // And real ssh accepts our file with strict checking.
      const ssh = execFileSync(
        'ssh',
        [
          '-F',
          '/dev/null',
          '-i',
          LAB.key,
          '-o',
          'BatchMode=yes',
          '-o',
          `UserKnownHostsFile=${kh}`,
          '-o',
          'StrictHostKeyChecking=yes',
          `root@${h.address}`,
          'echo ok',
        ],
        {encoding: 'utf8'},
      )
      expect(ssh.trim()).toBe('ok')
    })

    it('refuses a changed key (tampered known_hosts), even with acceptNew; a pin of the new key replaces the record', async () => {
      const kh = path.join(work, 'kh-changed')
      const otherKey = h2.hostKeyLine.split(' ').slice(1).join(' ')
      writeFileSync(kh, `# kflan\n${h.address} ${otherKey}\n`)
      for (const extra of [{}, {acceptNew: true}]) {
        const err = await Remote.connect(target(h), {knownHostsPath: kh, ...extra}).catch((error) => error)
        expect(err).toBeInstanceOf(HostKeyError)
        expect(err.problem).toBe('changed')
        expect(err.message).toContain('HOST KEY CHANGED')
        expect(err.hint).toContain(`remove line 2 from ${kh}`)
      }

      expect(readFileSync(kh, 'utf8')).toBe(`# kflan\n${h.address} ${otherKey}\n`)
      // The inventory pins the key the host really has (a re-made host, re-pinned): trusted, and
      // the old line replaced in place; the comment stays.
      const r = await Remote.connect(target(h, {hostKey: h.hostKey}), {knownHostsPath: kh})
      expect(r.hostKey.action).toBe('repinned')
      await r.close()
      const lines = readFileSync(kh, 'utf8').trim().split('\n')
      expect(lines[0]).toBe('# kflan')
      expect(lines).toHaveLength(2)
      expect(lines[1]).toContain(h.hostKeyLine.split(' ').slice(1).join(' '))
    })
  })

  describe('commands', () => {
    it('exec returns code and output; run throws RemoteCommandError', async () => {
      const r = await root.exec('echo out; echo err >&2; exit 3')
      expect(r).toMatchObject({code: 3, stdout: 'out\n', stderr: 'err\n'})
      const err = await root.run('echo boom >&2; exit 7').catch((error) => error)
      expect(err).toBeInstanceOf(RemoteCommandError)
      expect(err).toMatchObject({host: h.name, code: 7, stderr: 'boom\n'})
      expect(err.message).toBe(`${h.name}: \`echo boom >&2; exit 7\` exited 7: boom`)
      expect((await root.run('exit 1', {okCodes: [0, 1]})).code).toBe(1)
    })

    it('feeds stdin (binary) and times out', async () => {
      const data = randomBytes(200_000)
      const r = await root.run('sha256sum', {stdin: data})
      expect(r.stdout.slice(0, 64)).toBe(execFileSync('sha256sum', {input: data, encoding: 'utf8'}).slice(0, 64))
      const t0 = Date.now()
      const t = await root.exec('sleep 30', {timeoutMs: 500})
      expect(t.timedOut).toBe(true)
      expect(t.code).toBeNull()
      // Behaviour, not speed: the 500 ms timeout fired long before the 30 s sleep ended.
      expect(Date.now() - t0).toBeLessThan(20_000)
      await expect(root.run('sleep 30', {timeoutMs: 300})).rejects.toThrow(/timed out/)
    })

    it('runs many commands concurrently on one connection (under MaxSessions)', async () => {
      const rs = await Promise.all(Array.from({length: 40}, (_, i) => root.run(`echo ${i}`)))
      expect(rs.map((r) => r.stdout.trim())).toEqual(Array.from({length: 40}, (_, i) => String(i)))
    })

    it('logs every command with code and duration, secrets redacted', async () => {
      const secret = `tok-${randomBytes(8).toString('hex')}`
      await root.run(`echo ${secret} >/dev/null; echo visible-${secret}`, {secrets: [secret]})
      const e = memLog.entries.findLast((x) => x.entry.kind === 'exec')!
      expect(e.host).toBe(h.name)
      expect(e.entry).toMatchObject({
        code: 0,
        command: 'echo *** >/dev/null; echo visible-***',
        stdout: 'visible-***\n',
      })
      expect(e.entry.durationMs).toBeGreaterThan(0)
      expect(readFileSync(logFile, 'utf8')).not.toContain(secret)
    })

    // Round trip time and the converged re-run's speed: bench/remote.ts (figures, not assertions).
  })

  describe('files', () => {
    it('created → unchanged → updated (mode) → updated (content), atomically', async () => {
      const f = `${BASE}/etc/app.conf`
      const o = {stateDir: STATE}
      expect(await writeFile(root, {path: f, content: 'a=1\n', mode: 0o640, owner: 'root:root'}, o)).toBe('created')
      expect((await sshExec(h, `stat -c '%a %U:%G' ${f}; cat ${f}`)).stdout).toBe('640 root:root\na=1\n')
      expect(await writeFile(root, {path: f, content: 'a=1\n', mode: 0o640, owner: 'root:root'}, o)).toBe('unchanged')
      expect(await writeFile(root, {path: f, content: 'a=1\n', mode: 0o600}, o)).toBe('updated')
      expect(await writeFile(root, {path: f, content: 'a=2\n', mode: 0o600}, o)).toBe('updated')
      expect((await sshExec(h, `stat -c %a ${f}; cat ${f}; ls -A ${BASE}/etc; cat ${STATE}/managed`)).stdout).toBe(
        `600\na=2\napp.conf\n${f}\n`,
      )
    })

    it('backs up a pre-existing file kflan did not create', async () => {
      const f = `${BASE}/etc/vendor.conf`
      await sshExec(h, `printf 'vendor\\n' > ${f}; chmod 644 ${f}`)
      const [c] = await writeFiles(root, [{path: f, content: 'kflan\n', mode: 0o644}], {stateDir: STATE})
      expect(c).toMatchObject({result: 'updated', backup: `${STATE}/backup${f}`})
      expect((await sshExec(h, `cat ${f} ${STATE}/backup${f}`)).stdout).toBe('kflan\nvendor\n')
    })

    it('dry run writes nothing (sha256 before = after) and shows a diff', async () => {
      const f = `${BASE}/etc/app.conf`
      const key = `${BASE}/etc/server-key.pem`
      await writeFile(root, {path: key, content: 'KEY-1\n', mode: 0o600}, {stateDir: STATE})
      const sums = () =>
        sshExec(h, `sha256sum ${f} ${key}; ls -A ${BASE}/etc | sort; stat -c %a ${f} ${key}`).then((r) => r.stdout)
      const before = await sums()
      const res = await writeFiles(
        root,
        [
          {path: f, content: 'a=3\n', mode: 0o644},
          {path: key, content: 'KEY-2\n', mode: 0o600},
          {path: `${BASE}/etc/new.conf`, content: 'x\n', mode: 0o644},
        ],
        {stateDir: STATE, dryRun: true},
      )
      expect(await sums()).toBe(before)
      expect(res.map((r) => r.result)).toEqual(['updated', 'updated', 'created'])
      expect(res[0].diff).toContain('-a=2\n+a=3\n')
      expect(res[0].diff).toContain('mode 0600 → 0644')
      expect(res[1].diff).toContain('(secret, 6 bytes changed)')
      expect(res[1].diff).not.toContain('KEY-')
      expect((await readRemoteFile(root, key))?.toString()).toBe('KEY-1\n')
    })
  })

  describe('uploads', () => {
    it('measures cat-over-stdin vs SFTP, and skips when the checksum matches', async () => {
      const big = path.join(work, 'big.bin')
      writeFileSync(big, randomBytes(48 << 20))
      // Warm up (first transfer of a connection is slower whatever the method), then alternate.
      await uploadFile(root, big, `${BASE}/upload-warm.bin`, {force: true})
      const speeds: Record<'cat' | 'sftp', number[]> = {cat: [], sftp: []}
      for (let round = 0; round < 3; round++) {
        for (const method of round % 2 ? (['sftp', 'cat'] as const) : (['cat', 'sftp'] as const)) {
          const r = await uploadFile(root, big, `${BASE}/upload-${method}.bin`, {method, force: true, mode: 0o600})
          expect(r.result).toBe('uploaded')
          speeds[method].push(r.mbPerSec!)
        }
      }

      const fmt = (xs: number[]) =>
        `median ${median(xs).toFixed(0)} MB/s (runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`
      report.push(
        `upload throughput, 48 MiB random, root, lab bridge, after a warm-up:\n  cat over exec stdin: ${fmt(speeds.cat)}\n  SFTP fastPut (64 × 32 KiB in flight): ${fmt(speeds.sftp)}`,
      )
      const sum = (await sshExec(h, `sha256sum ${BASE}/upload-cat.bin ${BASE}/upload-sftp.bin`)).stdout
      const local = execFileSync('sha256sum', [big], {encoding: 'utf8'}).slice(0, 64)
      expect(
        sum
          .split('\n')
          .filter(Boolean)
          .map((l) => l.slice(0, 64)),
      ).toEqual([local, local])
      const t0 = performance.now()
      const skip = await uploadFile(root, big, `${BASE}/upload-cat.bin`, {mode: 0o600})
      expect(skip.result).toBe('unchanged')
      report.push(`upload skip (remote sha256 of 48 MiB matches): ${(performance.now() - t0).toFixed(0)} ms`)
    })

    it("installs binaries from the lab's etcd release tarball, then skips", async () => {
      const {tarball, version} = etcdBundle()
      const members = [
        {member: 'etcd', dest: `${BASE}/bin/etcd`},
        {member: 'etcdctl', dest: `${BASE}/bin/etcdctl`},
      ]
      const t0 = performance.now()
      const a = await installFromTarball(root, tarball, members, {stateDir: STATE})
      const first = performance.now() - t0
      expect(a.results.map((r) => r.result)).toEqual(['created', 'created'])
      expect((await root.run(`${BASE}/bin/etcd --version`)).stdout).toContain(`etcd Version: ${version}`)
      expect((await sshExec(h, `stat -c %a ${BASE}/bin/etcd`)).stdout.trim()).toBe('755')
      const t1 = performance.now()
      const b = await installFromTarball(root, tarball, members, {stateDir: STATE})
      expect(b.results.map((r) => r.result)).toEqual(['unchanged', 'unchanged'])
      report.push(
        `etcd bundle install: ${first.toFixed(0)} ms first (upload ${(statSync(tarball).size / 1e6).toFixed(0)} MB + extract, etcd ${version}), ${(performance.now() - t1).toFixed(0)} ms converged`,
      )
    })
  })

  describe('facts', () => {
    it('gathers facts from a real Debian host in one round trip', async () => {
      const n = root.execCount
      const f = await gatherFacts(root)
      expect(root.execCount - n).toBe(1)
      expect(f.warnings).toEqual([])
      expect(f.os.family).toBe('debian')
      expect(f.systemd).toMatchObject({present: true, running: true})
      expect(f.docker.installed).toBe(true)
      expect(f.docker.unit.exists).toBe(true)
      expect(interfaceWithAddress(f.interfaces, h.address)?.name).toBe('eth0')
      expect(f.hostname).toBe(h.name)
      expect(f.arch).toBe('x86_64')
      expect(Math.abs(f.clock.skewMs)).toBeLessThan(1000)
      report.push(
        `facts: ${f.gatherMs.toFixed(0)} ms (one round trip); clock skew ${f.clock.skewMs} ± ${f.clock.uncertaintyMs} ms`,
      )
      if (process.env.KFLAN_CAPTURE_FACTS) {
        writeFileSync(
          process.env.KFLAN_CAPTURE_FACTS,
          (await root.run('sh -s', {stdin: factsScript({etcdDataDir: '/var/lib/etcd'})})).stdout,
        )
      }
    })
  })

  describe('unreachable hosts', () => {
    it('an unused lab address gives UnreachableHostError quickly', async (ctx) => {
      // Only ever aim at the lab's own bridge on this machine.
      const route = execFileSync('ip', ['route', 'get', UNUSED_ADDRESS], {encoding: 'utf8'})
      if (!new RegExp(`dev kflanlab${LAB_ID} `).test(route)) ctx.skip()
      const t0 = Date.now()
      const err = await Remote.connect(
        {...target(h), name: 'ghost', address: UNUSED_ADDRESS},
        opts({connectTimeoutMs: 2000}),
      ).catch((error) => error)
      expect(err).toBeInstanceOf(UnreachableHostError)
      expect(err.message.startsWith(`ghost: cannot reach ${UNUSED_ADDRESS}:22`)).toBe(true)
      expect(err.hint).toContain(`ssh -p 22 root@${UNUSED_ADDRESS}`)
      // The 2 s connect timeout fired (TCP's own SYN retries would take minutes).
      expect(Date.now() - t0).toBeLessThan(30_000)
    })

    it('a closed port gives UnreachableHostError at once', async () => {
      const t0 = Date.now()
      const err = await Remote.connect(target(h, {port: 2}), opts()).catch((error) => error)
      expect(err).toBeInstanceOf(UnreachableHostError)
      expect(err.reason).toBe('ECONNREFUSED')
      expect(err.message).toContain('connection refused')
      // Refused, not timed out: the bound is the default 8 s connect timeout.
      expect(Date.now() - t0).toBeLessThan(8000)
    })

    it('authenticates through an ssh-agent (no key file)', async () => {
      const sock = path.join(work, 'agent.sock')
      const out = execFileSync('ssh-agent', ['-a', sock], {encoding: 'utf8'})
      const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)?.[1])
      try {
        execFileSync('ssh-add', ['-q', LAB.key], {env: {...process.env, SSH_AUTH_SOCK: sock}, stdio: 'ignore'})
        const r = await connect(target(h, {identityFile: undefined, useAgent: true, hostKey: h.hostKey}), {
          agentSocket: sock,
        })
        expect((await r.run('id -u')).stdout.trim()).toBe('0')
        const err = await Remote.connect(
          target(h, {identityFile: undefined, useAgent: true, hostKey: h.hostKey}),
          opts({agentSocket: ''}),
        ).catch((error) => error)
        expect(err).toBeInstanceOf(AuthError)
      } finally {
        if (pid) process.kill(pid)
      }
    })

    it('a wrong key gives AuthError', async () => {
      const k = path.join(work, 'wrong_key')
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k])
      const err = await Remote.connect(target(h, {identityFile: k, hostKey: h.hostKey}), opts()).catch((error) => error)
      expect(err).toBeInstanceOf(AuthError)
      expect(err.hint).toContain('authorized_keys')
    })

    it('connectAll reports per host and never throws for one bad host', async () => {
      const t0 = performance.now()
      const res = await connectAll(
        [
          target(h, {hostKey: h.hostKey}),
          target(h2, {hostKey: h2.hostKey}),
          {...target(h), name: 'ghost', address: UNUSED_ADDRESS},
        ],
        opts({connectTimeoutMs: 2000}),
      )
      opened.push(...res.remotes)
      expect(res.results.map((r) => (r.remote ? 'ok' : r.error?.name))).toEqual(
        ['Remote', 'Remote', 'UnreachableHostError'].map((x) => (x === 'Remote' ? 'ok' : x)),
      )
      expect(res.failures[0].target.name).toBe('ghost')
      // One bad host costs its 2 s connect timeout, not a hang.
      expect(performance.now() - t0).toBeLessThan(30_000)
    })
  })

  describe('bastion', () => {
    it('reaches a host through a jump host, still verifying the target key', async () => {
      const bastion = {address: h.address, port: 22, user: 'root', identityFile: LAB.key, hostKey: h.hostKey}
      const r = await connect(target(h2, {hostKey: h2.hostKey, bastion}))
      expect((await r.run('hostname')).stdout.trim()).toBe(h2.name)
      const err = await Remote.connect(target(h2, {hostKey: h.hostKey, bastion}), opts()).catch((error) => error)
      expect(err).toBeInstanceOf(HostKeyError)
      const un = await Remote.connect(
        {...target(h), name: 'ghost', address: UNUSED_ADDRESS, bastion},
        opts({connectTimeoutMs: 2000}),
      ).catch((error) => error)
      expect(un).toBeInstanceOf(UnreachableHostError)
      // Two hosts behind a dead bastion: one bastion attempt, each host told once.
      const deadBastion = {...bastion, address: UNUSED_ADDRESS}
      const all = await connectAll(
        [target(h, {bastion: deadBastion}), target(h2, {bastion: deadBastion})],
        opts({connectTimeoutMs: 2000}),
      )
      expect(all.failures.map((f) => f.error.message)).toEqual([
        `${h.name}: via bastion: bastion ${UNUSED_ADDRESS}: cannot reach ${UNUSED_ADDRESS}:22: no SSH answer within 2s`,
        `${h2.name}: via bastion: bastion ${UNUSED_ADDRESS}: cannot reach ${UNUSED_ADDRESS}:22: no SSH answer within 2s`,
      ])
      expect(all.failures.every((f) => f.error instanceof UnreachableHostError)).toBe(true)
    })
  })

  describe('non-root users with sudo', () => {
    let hasSudo = false
    let passwordLogin = false
    beforeAll(async () => {
      hasSudo = (await root.exec('command -v sudo')).code === 0
      if (!hasSudo) hasSudo = await installSudo()
      if (!hasSudo) {
        console.warn('no sudo on the lab host and none could be installed: skipping the non-root sudo tests')
        return
      }

      const pub = readFileSync(`${LAB.key}.pub`, 'utf8').trim()
      const mk = (u: string) =>
        `id ${u} >/dev/null 2>&1 || useradd -m -s /bin/bash ${u}; mkdir -p /home/${u}/.ssh; printf '%s\\n' '${pub}' > /home/${u}/.ssh/authorized_keys; chown -R ${u}: /home/${u}/.ssh; chmod 700 /home/${u}/.ssh`
      await root.run(
        [
          mk(USER_NOPW),
          mk(USER_PW),
          mk(USER_NOSUDO),
          `echo '${USER_NOPW} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/${USER_NOPW}`,
          `echo '${USER_PW} ALL=(ALL) ALL' > /etc/sudoers.d/${USER_PW}`,
          `chmod 440 /etc/sudoers.d/${USER_NOPW} /etc/sudoers.d/${USER_PW}`,
          `echo '${USER_PW}:${SUDO_PW}' | chpasswd`,
          `usermod -p '*' ${USER_NOSUDO} 2>/dev/null; usermod -p '*' ${USER_NOPW} 2>/dev/null; true`,
        ].join(' && '),
        {secrets: [SUDO_PW]},
      )
      // The lab's sshd refuses passwords; allow them for the password user only, for this test.
      const reload = await root.exec(
        `printf 'Match User ${USER_PW}\n  PasswordAuthentication yes\n' > /etc/ssh/sshd_config.d/00-kflan-remote-e2e.conf && sshd -t && systemctl reload ssh`,
      )
      passwordLogin = reload.code === 0
      // sshd re-executes itself on reload: wait until it accepts connections again.
      await root.run('for i in $(seq 1 50); do ss -Hltn "sport = :22" | grep -q . && exit 0; sleep 0.1; done; exit 1')
      await sleep(300)
    })

    /**
     * The lab image has no sudo: install Debian's package on this host (fetched here with
     * apt-get download, sent with uploadFile). Removed with the lab's overlay at `lab.sh down`.
     */
    async function installSudo(): Promise<boolean> {
      try {
        const debs = path.join(tmpdir(), 'kflan-e2e-debs')
        execFileSync('mkdir', ['-p', debs])
        const have = () =>
          execFileSync('sh', ['-c', `ls ${debs}/sudo_*.deb 2>/dev/null | head -n1`], {encoding: 'utf8'}).trim()
        if (!have())
          execFileSync('sh', ['-c', `cd ${debs} && apt-get download sudo`], {stdio: 'ignore', timeout: 120_000})
        const deb = have()
        if (!deb) return false
        await uploadFile(root, deb, `${BASE}/sudo.deb`)
        await root.run(`dpkg -i ${BASE}/sudo.deb`, {timeoutMs: 60_000})
        return (await root.exec('command -v sudo')).code === 0
      } catch (error) {
        console.warn(`could not install sudo on ${h.name}: ${(error as Error).message}`)
        return false
      }
    }

    it('password login (no key) and sudo with the same password', async (ctx) => {
      if (!hasSudo || !passwordLogin) ctx.skip()
      const r = await connect({
        name: h.name,
        address: h.address,
        port: 22,
        user: USER_PW,
        password: SUDO_PW,
        sudoPassword: SUDO_PW,
        hostKey: h.hostKey,
      })
      expect(r.mode).toBe('sudo-password')
      expect((await r.run('id -u')).stdout.trim()).toBe('0')
      const bad = await Remote.connect(
        {name: h.name, address: h.address, port: 22, user: USER_PW, password: 'not-the-password', hostKey: h.hostKey},
        opts(),
      ).catch((error) => error)
      expect(bad).toBeInstanceOf(AuthError)
      expect(bad.message).toContain('tried: password')
    })

    it('NOPASSWD sudo: commands run as root through sudo -n', async (ctx) => {
      if (!hasSudo) ctx.skip()
      const r = await connect(target(h, {user: USER_NOPW, hostKey: h.hostKey}))
      expect(r.mode).toBe('sudo')
      expect((await r.run('id -u')).stdout.trim()).toBe('0')
      expect((await r.run('id -un', {sudo: false})).stdout.trim()).toBe(USER_NOPW)
      expect(await writeFile(r, {path: `${BASE}/sudo/nopw.conf`, content: 'x\n', mode: 0o600}, {stateDir: STATE})).toBe(
        'created',
      )
      expect((await sshExec(h, `stat -c '%U %a' ${BASE}/sudo/nopw.conf`)).stdout.trim()).toBe('root 600')
      // A sudo password given anyway is not needed, so never sent.
      const r2 = await connect(target(h, {user: USER_NOPW, sudoPassword: 'unused-password', hostKey: h.hostKey}))
      expect(r2.mode).toBe('sudo')
    })

    it('sudo with a password: fed on stdin, never in argv or logs, never leaking into stdin of the command', async (ctx) => {
      if (!hasSudo) ctx.skip()
      const r = await connect(target(h, {user: USER_PW, sudoPassword: SUDO_PW, hostKey: h.hostKey}))
      expect(r.mode).toBe('sudo-password')
      expect((await r.run('id -u')).stdout.trim()).toBe('0')
      // Twice in a row: a cached sudo timestamp must not let the password fall through to stdin.
      for (let i = 0; i < 2; i++) {
        expect((await r.run('cat', {stdin: 'payload\n'})).stdout).toBe('payload\n')
      }

      expect(
        await writeFile(r, {path: `${BASE}/sudo/pw.conf`, content: 'exact content\n', mode: 0o644}, {stateDir: STATE}),
      ).toBe('created')
      expect((await sshExec(h, `cat ${BASE}/sudo/pw.conf`)).stdout).toBe('exact content\n')
      const blob = path.join(work, 'sudo-blob.bin')
      writeFileSync(blob, randomBytes(3 << 20))
      for (const method of ['sftp', 'cat'] as const) {
        const up = await uploadFile(r, blob, `${BASE}/sudo/blob-${method}.bin`, {method})
        expect(up.result).toBe('uploaded')
        expect((await sshExec(h, `stat -c '%U %a' ${BASE}/sudo/blob-${method}.bin`)).stdout.trim()).toBe('root 644')
      }

      expect(readFileSync(logFile, 'utf8')).not.toContain(SUDO_PW)
      expect(JSON.stringify(memLog.entries)).not.toContain(SUDO_PW)
    })

    it('a wrong sudo password or no sudo rights give AuthError with a hint', async (ctx) => {
      if (!hasSudo) ctx.skip()
      const err = await Remote.connect(
        target(h, {user: USER_PW, sudoPassword: 'wrong-password', hostKey: h.hostKey}),
        opts(),
      ).catch((error) => error)
      expect(err).toBeInstanceOf(AuthError)
      expect(err.message).toMatch(/rejected the password/)
      const r = await connect(target(h, {user: USER_NOSUDO, hostKey: h.hostKey}))
      const e2 = await r.run('id -u').catch((error) => error)
      expect(e2).toBeInstanceOf(AuthError)
      expect(e2.hint).toMatch(/NOPASSWD|sudoers/)
    })
  })

  describe('a converged re-run', () => {
    it('connect + facts + compare 12 files on every lab host changes nothing (speed: bench/remote.ts)', async () => {
      const specs = Array.from({length: 12}, (_, i) => ({
        path: `${BASE}/conv/f${i}.conf`,
        content: `file ${i}\n`,
        mode: 0o644,
      }))
      const targets = hosts.slice(0, 5).map((x) => target(x, {hostKey: x.hostKey}))
      const first = await connectAll(targets, opts())
      expect(first.failures).toEqual([])
      await Promise.all(first.remotes.map((r) => writeFiles(r, specs, {stateDir: STATE})))
      await closeAll(first.remotes)

      const res = await connectAll(targets, opts())
      opened.push(...res.remotes)
      const out = await Promise.all(
        res.remotes.map(async (r) => {
          await gatherFacts(r)
          return writeFiles(r, specs, {stateDir: STATE})
        }),
      )
      expect(out.flat().every((c) => c.result === 'unchanged')).toBe(true)
      await Promise.all(res.remotes.map((r) => r.run(`rm -rf ${BASE}`)))
    })
  })
})
