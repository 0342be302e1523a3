/**
 * `kflan doctor` against the real lab: a converged cluster passes, then one real fault at a time,
 * each asserting exactly which checks fail (or warn) and that every other check still passes, then
 * repaired (by hand or with `kflan init`, in a `finally` so one failure does not cascade) and
 * checked clean again before the next.
 *
 * Brings up 3 masters (etcd) + 2 nodes (flanneld + docker), runs `kflan init` once, and takes the
 * lab down at the end. The CLI is the built ./bin/run.js (run `npx tsc -p . && npx oclif manifest`
 * first). Lab 0 by default; another lab with KFLAN_LAB_ID=N.
 *
 * Faults that cannot be made real in the lab's containers, and what is done instead:
 * - swap: `swapon` fails inside systemd-nspawn (and swap is not namespaced: it would be the whole
 *   machine's), so a crafted /proc/swaps is bind-mounted over the real one inside the host's mount
 *   namespace. doctor reads /proc/swaps exactly as on a real host.
 * - a config written through the v2 API: flannel 0.26.1 (v3) is what the lab runs and etcd 3.4
 *   serves v2 only with --enable-v2, so lab-m1 is restarted with ETCD_ENABLE_V2 in its environment
 *   file and the config is written with `ETCDCTL_API=2 etcdctl set`, as an operator following an old
 *   guide would. `kflan init` then restores etcd.conf and writes the config through v3.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {LAB, labDown, labExec, type LabHost, labUp, requireLab, run, sshExec} from './lab-helpers.js'

interface Result {
  id: string
  scope: 'cluster' | 'host'
  host?: string
  status: 'ok' | 'warn' | 'fail'
  message: string
  hint?: string
}
interface Report {
  cluster: string
  ok: boolean
  summary: {ok: number; warn: number; fail: number}
  durationMs: number
  results: Result[]
}

const CLI = join(LAB.repo, 'bin/run.js')
const ETCDCTL =
  '/opt/etcd/bin/etcdctl --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem'
const V2 =
  '/opt/etcd/bin/etcdctl --ca-file=/opt/etcd/ssl/ca.pem --cert-file=/opt/etcd/ssl/server.pem --key-file=/opt/etcd/ssl/server-key.pem --no-sync'

/** "status host id" for every result that is not ok, sorted. */
const problems = (r: Report) =>
  r.results
    .filter((x) => x.status !== 'ok')
    .map((x) => `${x.status} ${x.host ? `${x.host} ` : ''}${x.id}`)
    .sort()
const result = (r: Report, id: string, host?: string) => r.results.find((x) => x.id === id && x.host === host)

describe.skipIf(!requireLab())('kflan doctor on the lab', () => {
  let hosts: LabHost[] = []
  let stateDir = ''
  let work = ''
  const addr = (name: string) => hosts.find((h) => h.name === name)!.address

  async function init(): Promise<void> {
    await run(CLI, ['init', '-i', LAB.inventory, '--state-dir', stateDir], {timeoutMs: 240_000})
  }

  async function doctor(args: string[] = [], inventory = LAB.inventory): Promise<{code: number; report: Report}> {
    const r = await run(CLI, ['doctor', '-i', inventory, '--state-dir', stateDir, '--json', ...args], {
      check: false,
      timeoutMs: 60_000,
    })
    try {
      return {code: r.code, report: JSON.parse(r.stdout) as Report}
    } catch {
      throw new Error(`doctor --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
    }
  }

  /** The people's table (no --json). */
  const table = () =>
    run(CLI, ['doctor', '-i', LAB.inventory, '--state-dir', stateDir], {check: false, timeoutMs: 60_000})

  /** Polls doctor until nothing is wrong (a repair may take a moment to settle). */
  async function expectClean(timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last: {code: number; report: Report} | undefined
    while (Date.now() < deadline) {
      last = await doctor()
      if (last.code === 0 && problems(last.report).length === 0) return
      await sleep(1000)
    }

    expect(problems(last!.report), 'the cluster did not come back clean').toEqual([])
  }

  beforeAll(async () => {
    await labDown()
    hosts = await labUp({masters: 3, nodes: 2})
    stateDir = mkdtempSync(join(tmpdir(), 'kflan-doctor-e2e-state-'))
    work = mkdtempSync(join(tmpdir(), 'kflan-doctor-e2e-'))
    await init()
  })

  afterAll(async () => {
    await labDown()
    for (const d of [stateDir, work]) if (d) rmSync(d, {recursive: true, force: true})
  })

  it('passes on the converged cluster: exit 0, every check ok, every group present', async () => {
    const {code, report} = await doctor()
    expect(problems(report)).toEqual([])
    expect(code).toBe(0)
    expect(report.ok).toBe(true)
    const ids = new Set(report.results.map((r) => r.id))
    for (const id of [
      'ssh.reachable',
      'host.swap',
      'host.selinux',
      'host.firewalld',
      'host.iptables-input',
      'host.br-netfilter',
      'host.bridge-nf-call-iptables',
      'host.ip-forward',
      'host.forward-chain',
      'host.clock-skew',
      'etcd.unit',
      'etcd.health',
      'etcd.members',
      'etcd.leader',
      'etcd.alarms',
      'etcd.db-size',
      'certs.files',
      'certs.expiry',
      'certs.san',
      'certs.usage',
      'certs.chain',
      'certs.key',
      'certs.ca',
      'network.config',
      'flannel.leases',
      'flannel.unit',
      'flannel.lease',
      'flannel.subnet-file',
      'flannel.vxlan',
      'flannel.routes',
      'docker.dropin',
      'docker.unit',
      'docker.bridge',
      'dataplane.ping',
      'files.managed',
      'etcd.tls',
    ]) {
      expect(ids, id).toContain(id)
    }

    expect(result(report, 'dataplane.ping', 'lab-n1')!.message).toMatch(
      /^from docker0 10\.244\.\d+\.1 to lab-n2 10\.244\.\d+\.1 [\d.]+ ms$/,
    )
    // The table for people: grouped by host, a summary line, exit 0.
    const text = await table()
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^cluster\n {2}ok {4}host\.clock-skew/)
    expect(text.stdout).toMatch(/\nlab-n2\n {2}ok {4}ssh\.reachable/)
    expect(text.stdout).toMatch(/\ncluster lab: 0 failed, 0 warnings, \d+ ok in [\d.]+ s\n$/)
  })

  it('one etcd member stopped warns (quorum kept); two stopped fail (quorum lost), naming them', async () => {
    try {
      await labExec('lab-m2', 'systemctl stop etcd')
      const one = await doctor()
      expect(problems(one.report)).toEqual(['warn etcd.health', 'warn lab-m2 etcd.unit'])
      expect(one.code).toBe(0)
      expect(result(one.report, 'etcd.health')!.message).toMatch(
        /^1 member of 3 unhealthy: lab-m2 \(etcd\.service inactive.*\); quorum kept \(2 healthy, 2 needed\)$/,
      )

      await labExec('lab-m3', 'systemctl stop etcd')
      const two = await doctor()
      expect(problems(two.report)).toEqual([
        'fail etcd.health',
        'fail etcd.leader',
        'fail lab-m2 etcd.unit',
        'fail lab-m3 etcd.unit',
      ])
      expect(two.code).toBe(1)
      const health = result(two.report, 'etcd.health')!
      expect(health.message).toMatch(/^quorum lost: 0 of 3 members healthy, 2 needed; unhealthy: /)
      expect(health.message).toContain('lab-m2 (etcd.service inactive')
      expect(health.message).toContain('lab-m3 (etcd.service inactive')
      expect(health.hint).toContain('start etcd on lab-m2 and lab-m3')
      // Serializable reads keep the rest checkable without quorum.
      expect(result(two.report, 'network.config')!.status).toBe('ok')
      expect(result(two.report, 'flannel.lease', 'lab-n1')!.status).toBe('ok')
    } finally {
      await Promise.all(['lab-m2', 'lab-m3'].map((n) => labExec(n, 'systemctl start --no-block etcd')))
    }

    await expectClean()
  })

  it('swap on (a crafted /proc/swaps bind-mounted: swapon cannot work in nspawn)', async () => {
    try {
      await labExec(
        'lab-n1',
        `printf 'Filename\\t\\t\\t\\tType\\t\\tSize\\t\\tUsed\\t\\tPriority\\n/swapfile                               file\\t\\t1048572\\t\\t0\\t\\t-2\\n' >/run/kflan-e2e-swaps && mount --bind /run/kflan-e2e-swaps /proc/swaps`,
      )
      const {code, report} = await doctor()
      expect(problems(report)).toEqual(['fail lab-n1 host.swap'])
      expect(code).toBe(1)
      expect(result(report, 'host.swap', 'lab-n1')!.message).toBe('swap is on: /swapfile (file, 1024 MiB)')
    } finally {
      await labExec('lab-n1', 'umount /proc/swaps; rm -f /run/kflan-e2e-swaps')
    }

    await expectClean()
  })

  it('ip_forward = 0 (and the table for people marks it)', async () => {
    try {
      await labExec('lab-n1', 'sysctl -qw net.ipv4.ip_forward=0')
      const {code, report} = await doctor()
      expect(problems(report)).toEqual(['fail lab-n1 host.ip-forward'])
      expect(code).toBe(1)
      const text = await table()
      expect(text.code).toBe(1)
      expect(text.stdout).toMatch(
        /\nlab-n1 \(FAIL\)\n {2}FAIL {2}host\.ip-forward +net\.ipv4\.ip_forward = 0: the host does not route pod traffic\n +hint: run `sysctl -w net\.ipv4\.ip_forward=1`/,
      )
      expect(text.stdout.trimEnd().split('\n').at(-1)).toBe('failed: lab-n1 host.ip-forward')
    } finally {
      await labExec('lab-n1', 'sysctl -qw net.ipv4.ip_forward=1')
    }

    await expectClean()
  })

  it("a server certificate re-issued without the member's IP", async () => {
    // Signed by the cluster's own CA, so only the SANs are wrong; a year of validity.
    const pki = join(stateDir, 'pki')
    execFileSync('sh', [
      '-c',
      `set -e; cd ${work}
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout bad-key.pem -out bad.csr -subj /CN=lab-m2/O=kflan/OU=lab 2>/dev/null
      printf 'subjectAltName=DNS:lab-m2,DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\nkeyUsage=critical,digitalSignature\\n' >bad.ext
      openssl x509 -req -in bad.csr -CA ${pki}/ca.pem -CAkey ${pki}/ca-key.pem -CAcreateserial -out bad.pem -days 365 -extfile bad.ext 2>/dev/null`,
    ])
    try {
      await sshExec('lab-m2', 'cat >/opt/etcd/ssl/server.pem', {input: readFileSync(join(work, 'bad.pem'), 'utf8')})
      await sshExec('lab-m2', 'umask 077; cat >/opt/etcd/ssl/server-key.pem', {
        input: readFileSync(join(work, 'bad-key.pem'), 'utf8'),
      })
      const {code, report} = await doctor()
      // etcd loads the new certificate on the next handshake: clients reject lab-m2 at once.
      expect(problems(report)).toEqual(['fail lab-m2 certs.san', 'warn etcd.health'])
      expect(code).toBe(1)
      expect(result(report, 'certs.san', 'lab-m2')!.message).toMatch(
        new RegExp(
          `^not valid for ${addr('lab-m2').replaceAll('.', String.raw`\.`)}: server\\.pem \\(SANs DNS:lab-m2,DNS:localhost,IP:127\\.0\\.0\\.1\\)`,
        ),
      )
      expect(result(report, 'etcd.health')!.message).toContain(
        `lab-m2 (x509: certificate is valid for 127.0.0.1, not ${addr('lab-m2')})`,
      )
    } finally {
      await init() // re-installs the state directory's certificate and restarts etcd there
    }

    await expectClean()
  })

  it('the network config deleted, then written through the v2 API', async () => {
    const m1 = addr('lab-m1')
    try {
      await sshExec('lab-m1', `ETCDCTL_API=3 ${ETCDCTL} --endpoints=https://${m1}:2379 del /coreos.com/network/config`)
      const gone = await doctor()
      expect(problems(gone.report)).toEqual(['fail network.config'])
      expect(gone.code).toBe(1)
      expect(result(gone.report, 'network.config')!.message).toMatch(
        /^\/coreos\.com\/network\/config is missing \(v3 API\): flanneld cannot start/,
      )

      // The v2 API exists only with --enable-v2: lab-m1 gets it, and the config goes in through v2.
      await sshExec('lab-m1', `echo 'ETCD_ENABLE_V2="true"' >>/opt/etcd/cfg/etcd.conf && systemctl restart etcd`)
      await sshExec(
        'lab-m1',
        `ETCDCTL_API=2 ${V2} --endpoints=https://${m1}:2379 set /coreos.com/network/config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'`,
      )
      const v2 = await doctor()
      // The hand edit of etcd.conf is itself a finding: a line kflan did not write.
      expect(problems(v2.report)).toEqual(['fail lab-m1 files.managed', 'fail network.config'])
      expect(result(v2.report, 'files.managed', 'lab-m1')!.message).toBe(
        String.raw`/opt/etcd/cfg/etcd.conf has a line kflan did not write: "ETCD_ENABLE_V2=\"true\""`,
      )
      expect(v2.code).toBe(1)
      expect(result(v2.report, 'network.config')!.message).toContain(
        'written through the v2 API, but flannel 0.26.1 reads v3: write it with ETCDCTL_API=3 etcdctl put /coreos.com/network/config \'{"Network":"10.244.0.0/16"',
      )
    } finally {
      await init() // restores etcd.conf (restarting lab-m1) and writes the config through v3
    }

    await expectClean()
  })

  it('flanneld stopped (docker, which only Wants= it, keeps running)', async () => {
    try {
      await labExec('lab-n1', 'systemctl stop flanneld')
      const {code, report} = await doctor()
      expect(problems(report)).toEqual(['fail lab-n1 flannel.unit'])
      expect(code).toBe(1)
      // The real flanneld 0.26.1 exits non-zero on SIGTERM: systemd calls the unit failed.
      expect(result(report, 'flannel.unit', 'lab-n1')!.message).toMatch(
        /^flanneld\.service is (inactive \(dead\)|failed \(failed\))$/,
      )
    } finally {
      await labExec('lab-n1', 'systemctl start flanneld')
    }

    await expectClean()
  })

  it('docker restarted without the drop-in', async () => {
    try {
      await labExec(
        'lab-n2',
        'rm /etc/systemd/system/docker.service.d/10-kflan-flannel.conf && systemctl daemon-reload && systemctl restart docker',
      )
      const {code, report} = await doctor()
      // docker keeps docker0's address across restarts, so only the drop-in is wrong (for now).
      expect(problems(report)).toEqual(['fail lab-n2 docker.dropin'])
      expect(code).toBe(1)
      expect(result(report, 'docker.dropin', 'lab-n2')!.message).toBe(
        "/etc/systemd/system/docker.service.d/10-kflan-flannel.conf is missing: docker starts without flannel's --bip/--mtu",
      )
    } finally {
      await init()
    }

    await expectClean()
  })

  it('the VXLAN port dropped on one node: the pings fail, the rule is named', async () => {
    try {
      await labExec('lab-n2', 'iptables -I INPUT -p udp --dport 8472 -j DROP')
      const {code, report} = await doctor()
      expect(problems(report)).toEqual([
        'fail lab-n1 dataplane.ping',
        'fail lab-n2 dataplane.ping',
        'fail lab-n2 host.iptables-input',
      ])
      expect(code).toBe(1)
      expect(result(report, 'dataplane.ping', 'lab-n1')!.message).toMatch(
        /^from docker0 10\.244\.\d+\.1: no reply from lab-n2 10\.244\.\d+\.1 \(no reply within 1 s\)$/,
      )
      expect(result(report, 'dataplane.ping', 'lab-n1')!.hint).toMatch(/^lab-n2's iptables drop UDP 8472/)
    } finally {
      await labExec('lab-n2', 'iptables -D INPUT -p udp --dport 8472 -j DROP')
    }

    await expectClean()
  })

  it('an unreachable host is one failed ssh.reachable; every other host is still checked', async () => {
    try {
      await labExec('lab-n2', 'systemctl stop ssh')
      const {code, report} = await doctor()
      expect(problems(report)).toEqual(['fail lab-n2 ssh.reachable'])
      expect(report.results.filter((r) => r.host === 'lab-n2')).toHaveLength(1)
      expect(code).toBe(1)
      expect(result(report, 'ssh.reachable', 'lab-n2')!.message).toMatch(
        /^unreachable: cannot reach [\d.]+:22: connection refused/,
      )
      expect(result(report, 'flannel.routes', 'lab-n1')!.status).toBe('ok')
      expect(report.results.filter((r) => r.host === 'lab-n1').length).toBeGreaterThan(15)
    } finally {
      await labExec('lab-n2', 'systemctl start ssh')
    }

    await expectClean()
  })

  it('a changed host key on the member that does the cluster reads: one failed check; another member takes over', async () => {
    const known = join(stateDir, 'known_hosts')
    const saved = readFileSync(known, 'utf8')
    // Record lab-m2's key for lab-m1's address: lab-m1 now presents a "changed" key.
    const m2Key = saved
      .split('\n')
      .find((l) => l.startsWith(`${addr('lab-m2')} `))!
      .split(' ')
      .slice(1)
      .join(' ')
    try {
      writeFileSync(
        known,
        saved
          .split('\n')
          .map((l) => (l.startsWith(`${addr('lab-m1')} `) ? `${addr('lab-m1')} ${m2Key}` : l))
          .join('\n'),
      )
      // Without the inventory's pins: the record is the only evidence (a pin of the real key would
      // be trusted over the record and replace it, see init.test.ts).
      const unpinned = join(mkdtempSync(join(tmpdir(), 'kflan-inv-')), 'inventory.yaml')
      writeFileSync(unpinned, readFileSync(LAB.inventory, 'utf8').replaceAll(/^ {4}hostKey: .*\n/gm, ''))
      const {code, report} = await doctor([], unpinned)
      expect(problems(report)).toEqual(['fail lab-m1 ssh.reachable'])
      expect(code).toBe(1)
      expect(result(report, 'ssh.reachable', 'lab-m1')!.message).toMatch(/^host key refused: HOST KEY CHANGED/)
      // lab-m1's endpoint was asked from another member, which also did the cluster reads.
      expect(result(report, 'etcd.health')!.message).toMatch(/^all 3 members healthy/)
      for (const id of ['etcd.members', 'etcd.leader', 'etcd.alarms', 'network.config', 'flannel.leases'])
        expect(result(report, id)?.status, id).toBe('ok')
      expect(result(report, 'etcd.db-size', 'lab-m1')!.status).toBe('ok')
    } finally {
      writeFileSync(known, saved)
    }
  })

  it('--host limits the host checks to one node, with pings to and from it', async () => {
    const {code, report} = await doctor(['--host', 'lab-n1'])
    expect(problems(report)).toEqual([])
    expect(code).toBe(0)
    expect(new Set(report.results.map((r) => r.host ?? 'cluster'))).toEqual(new Set(['cluster', 'lab-n1', 'lab-n2']))
    expect(report.results.filter((r) => r.host === 'lab-n2').map((r) => r.id)).toEqual(['dataplane.ping'])
    expect(result(report, 'dataplane.ping', 'lab-n2')!.message).toMatch(/ to lab-n1 /)
  })
})
