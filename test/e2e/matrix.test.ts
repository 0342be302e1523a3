/**
 * The version matrix CI runs, every row on real binaries built by test/lab/bundles.sh (flanneld and
 * etcd from their Go modules; etcd 3.4 from Debian's packages), never on anything else:
 *
 *   flannel 0.26.1  on etcd 3.5.35  (the lab's defaults; 3 masters + 2 nodes)
 *   flannel 0.17.0  on etcd 3.4.23  (flannel reads and writes etcd's v2 API; 1 master + 2 nodes)
 *   flannel 0.28.10 on etcd 3.6.16  (1 master + 2 nodes)
 *
 * Each row: `lab.sh up` with those bundles, `kflan init`, `kflan doctor` with every check ok, a
 * re-run of init that restarts nothing (systemd InvocationIDs unchanged), and a container on lab-n1
 * pinging a container on lab-n2 across the overlay (the lab's busybox image). Each row prints the
 * binaries it ran against (flanneld --version, etcd --version, the bundles' sha256).
 *
 * A cold bundle cache builds each bundle once (1-3 min per bundle on 2 cores; docs/lab.md).
 */
import {readFileSync} from 'node:fs'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'

import {kflan, labInventory, parseEnv, tempStateDir, unitStamps} from './kflan-helpers.js'
import {LAB, labDown, type LabHost, labUp, requireLab, runLab, sshExec} from './lab-helpers.js'

interface Row {
  flannel: string
  etcd: string
  masters: number
}

const MATRIX: Row[] = [
  {flannel: '0.26.1', etcd: '3.5.35', masters: 3},
  {flannel: '0.17.0', etcd: '3.4.23', masters: 1},
  {flannel: '0.28.10', etcd: '3.6.16', masters: 1},
]

const IMAGE = 'kflan-lab/busybox:1'
/** A cold build of two bundles plus the lab's boot. */
const UP_TIMEOUT_MS = 40 * 60_000

interface DoctorReport {
  ok: boolean
  summary: {ok: number; warn: number; fail: number}
  results: {id: string; host?: string; status: string; message: string}[]
}

for (const row of MATRIX) {
  describe.skipIf(!requireLab())(`matrix: flannel ${row.flannel} on etcd ${row.etcd}`, () => {
    let hosts: LabHost[] = []
    let masters: LabHost[] = []
    let nodes: LabHost[] = []
    let inventory = ''
    const state = tempStateDir()

    beforeAll(async () => {
      // The bundles first, with their own (long) bound: a cold cache builds them here.
      await runLab(['bundles', '--flannel', row.flannel, '--etcd', row.etcd], {timeoutMs: UP_TIMEOUT_MS})
      hosts = await labUp({masters: row.masters, nodes: 2, flannel: row.flannel, etcd: row.etcd})
      masters = hosts.filter((h) => h.role === 'master')
      nodes = hosts.filter((h) => h.role === 'node')
      inventory = labInventory()
    }, UP_TIMEOUT_MS)

    afterAll(async () => {
      await labDown()
    })

    it('the lab inventory names the bundles asked for', () => {
      const inv = parseYaml(readFileSync(LAB.inventory, 'utf8'))
      expect(inv.flannel.version).toBe(row.flannel)
      expect(inv.flannel.tarball).toMatch(
        new RegExp(`/flannel-v${row.flannel.replaceAll('.', String.raw`\.`)}-linux-amd64\\.tar\\.gz$`),
      )
      expect(inv.etcd.version).toBe(row.etcd)
      expect(inv.etcd.tarball).toMatch(
        new RegExp(`/etcd-v${row.etcd.replaceAll('.', String.raw`\.`)}-linux-amd64\\.tar\\.gz$`),
      )
    })

    it('kflan init converges, and the binaries on the hosts are the versions asked for', async () => {
      const r = await kflan(['init', '-i', inventory, '--state-dir', state])
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      const inv = parseYaml(readFileSync(inventory, 'utf8'))
      const flanneld = await sshExec(nodes[0].name, '/opt/flannel/bin/flanneld --version 2>&1')
      const etcd = await sshExec(masters[0].name, '/opt/etcd/bin/etcd --version')
      const sums = await runLab(['bundles', '--flannel', row.flannel, '--etcd', row.etcd])
      console.log(
        `== matrix row flannel ${row.flannel} on etcd ${row.etcd} (${masters.length} masters, ${nodes.length} nodes) ==\n` +
          `flanneld --version on ${nodes[0].name}: ${flanneld.stdout.trim()}\n` +
          `etcd --version on ${masters[0].name}:\n${etcd.stdout.trim()}\n` +
          `bundles: ${inv.flannel.tarball}, ${inv.etcd.tarball}\n${sums.stderr.trim()}`,
      )
      expect(flanneld.stdout.trim()).toBe(`v${row.flannel}`)
      expect(etcd.stdout).toContain(`etcd Version: ${row.etcd}`)
    })

    it('kflan doctor: every check ok', async () => {
      const r = await kflan(['doctor', '-i', inventory, '--state-dir', state, '--json'], {timeoutMs: 120_000})
      let report: DoctorReport
      try {
        report = JSON.parse(r.stdout) as DoctorReport
      } catch {
        throw new Error(`doctor --json printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
      }

      const bad = report.results
        .filter((x) => x.status !== 'ok')
        .map((x) => `${x.status} ${x.host ?? 'cluster'} ${x.id}: ${x.message}`)
      expect(bad).toEqual([])
      expect(r.code).toBe(0)
      expect(report.summary.ok).toBeGreaterThan(0)
    })

    it('a re-run of init changes nothing and restarts no unit', async () => {
      const units = (h: LabHost) => (h.role === 'master' ? ['etcd'] : ['flanneld', 'docker'])
      const stamps = () => Promise.all(hosts.map(async (h) => `${h.name}\n${await unitStamps(h.name, units(h))}`))
      const before = await stamps()
      for (const s of before) expect(s).toMatch(/InvocationID=[0-9a-f]{32}/)
      const r = await kflan(['init', '-i', inventory, '--state-dir', state])
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      expect(r.stdout).toContain('nothing changed: the cluster already matches the inventory')
      expect(await stamps()).toEqual(before)
    })

    it('a container on lab-n1 pings a container on lab-n2 across the overlay', async () => {
      const [n1, n2] = nodes
      const start = `docker rm -f kflan-matrix >/dev/null 2>&1; docker run -d --name kflan-matrix ${IMAGE} sleep 600`
      await Promise.all([sshExec(n1.name, start), sshExec(n2.name, start)])
      const ipOf = async (h: LabHost) =>
        (await sshExec(h.name, "docker inspect -f '{{.NetworkSettings.IPAddress}}' kflan-matrix")).stdout.trim()
      const subnetOf = async (h: LabHost) =>
        parseEnv((await sshExec(h.name, 'cat /run/flannel/subnet.env')).stdout).FLANNEL_SUBNET
      const [ip2, subnet2] = [await ipOf(n2), await subnetOf(n2)]
      // The container's address lies in its node's flannel subnet (a /24 here).
      expect(ip2.split('.').slice(0, 3)).toEqual(subnet2.split('/')[0].split('.').slice(0, 3))
      const ping = await sshExec(n1.name, `docker exec kflan-matrix ping -c 3 -W 2 ${ip2}`, {check: false})
      console.log(
        `flannel ${row.flannel} / etcd ${row.etcd}: container on ${n1.name} (${await ipOf(n1)}) → container on ${n2.name} (${ip2}):\n${ping.stdout.trim()}`,
      )
      expect(ping.code, `${ping.stdout}\n${ping.stderr}`).toBe(0)
      expect(ping.stdout).toMatch(/3 packets received/)
      await Promise.all([n1, n2].map((h) => sshExec(h.name, 'docker rm -f kflan-matrix', {check: false})))
    })
  })
}
