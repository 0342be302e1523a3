/**
 * Interrupts, the state-dir lock and etcd's journal in errors, against real lab hosts (1 etcd
 * member + 1 flannel node; the lab's etcd and flannel bundles). Nothing here is mocked: kflan is
 * the built CLI, signals are real signals sent to its process.
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {KFLAN, kflan, labInventory, tempStateDir} from './kflan-helpers.js'
import {LAB, labDown, type LabHost, labUp, requireLab, run, sshExec} from './lab-helpers.js'

interface Child {
  pid: number
  done: Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>
}

function startKflan(args: string[]): Child {
  const child = spawn(process.execPath, [KFLAN, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<{code: number | null; signal: string | null; stdout: string; stderr: string}>((resolve) => {
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr}))
  })
  return {pid: child.pid!, done}
}

/** Waits until the newest `init-*.log` of the state dir holds `text` (the runner's phase marks). */
async function waitForLog(state: string, text: string, timeoutMs = 180_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const dir = join(state, 'logs')
    const logs = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => /^init-.*\.log$/.test(f))
          .sort()
      : []
    const file = logs.at(-1)
    if (file && readFileSync(join(dir, file), 'utf8').includes(text)) return join(dir, file)
    if (Date.now() > deadline) throw new Error(`no "${text}" in the init log after ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** The machine-side end of a lab host's veth (test/lab/lab.sh names it kf<lab id>-<host>). */
const veth = (h: string) =>
  process.env.KFLAN_LAB_ID && process.env.KFLAN_LAB_ID !== '0' ? `kf${process.env.KFLAN_LAB_ID}-${h}` : `kfl-${h}`

const flannelTarball = () => /^flannel:\n[\s\S]*?tarball: (\S+)/m.exec(readFileSync(LAB.inventory, 'utf8'))![1]

const exists = async (h: string, p: string) => (await sshExec(h, `test -e ${p}`, {check: false})).code === 0

describe.skipIf(!requireLab())('interrupts, the state lock and etcd journal excerpts', () => {
  let hosts: LabHost[]
  let inventory: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 1})
    inventory = labInventory()
    const etcdVersion = /version: "([^"]+)"/.exec(readFileSync(inventory, 'utf8'))?.[1]
    console.log(`safety e2e: ${hosts.length} lab hosts, etcd ${etcdVersion}, flannel ${flannelTarball()}`)
  })
  afterAll(async () => {
    await labDown()
  })

  it('a second run is refused while the first holds the lock; SIGINT mid-run: the upload in flight finishes, nothing new starts, changes and log are printed, exit 130', async () => {
    // A slow link to lab-n1 (the machine side of its veth, 10 Mbit/s) keeps its binaries upload
    // in flight for seconds: the signal lands while a remote command runs.
    await run('tc', [
      'qdisc',
      'add',
      'dev',
      veth('lab-n1'),
      'root',
      'tbf',
      'rate',
      '10mbit',
      'burst',
      '32kbit',
      'latency',
      '400ms',
    ])
    let r
    let second
    let pid = 0
    let log = ''
    try {
      const child = startKflan(['init', '-i', inventory, '--state-dir', state])
      log = await waitForLog(state, 'phase binaries (hosts)')
      second = await kflan(['init', '-i', inventory, '--state-dir', state])
      process.kill(child.pid, 'SIGINT')
      r = await child.done
      pid = child.pid
    } finally {
      await run('tc', ['qdisc', 'del', 'dev', veth('lab-n1'), 'root'], {check: false})
    }

    // The second run, started while the first held the lock, was refused and named the holder.
    expect(second!.code).toBe(1)
    expect(second!.stderr).toContain(
      `another kflan run holds the state directory ${state}: PID ${pid} on ${hostname()} (\`kflan init -i ${inventory} --state-dir ${state}\``,
    )
    expect(r!.code, `${r!.stdout}\n${r!.stderr}`).toBe(130)
    expect(r.stderr).toContain('SIGINT received: finishing the commands in flight, starting nothing new')
    expect(r.stderr).toMatch(/interrupted by SIGINT/)
    expect(r.stderr).toContain(`log: ${log}`)
    // What was done is reported (every change, then the run's summary): preflight's host
    // preparation and the binaries that finished.
    expect(r.stderr).toMatch(
      /lab-n1: changed \d+[\s\S]*\/opt\/flannel\/bin\/flanneld[\s\S]*init: INTERRUPTED \(SIGINT\) after [\d.]+ s\. 2 hosts: 2 changed/,
    )
    // The upload in flight was let finish: flanneld is whole (same sha256 as in the tarball).
    const inTarball = spawnSync('sh', ['-c', `tar -xzOf ${flannelTarball()} flanneld | sha256sum | cut -c1-64`], {
      encoding: 'utf8',
    }).stdout.trim()
    expect((await sshExec('lab-n1', 'sha256sum < /opt/flannel/bin/flanneld | cut -c1-64')).stdout.trim()).toBe(
      inTarball,
    )
    // ... and the phase after it (certificates) never started, on any host.
    expect(await exists('lab-m1', '/opt/etcd/ssl/server.pem')).toBe(false)
    expect(await exists('lab-n1', '/opt/flannel/ssl/flanneld.pem')).toBe(false)
    expect(readFileSync(log, 'utf8')).toContain('SIGINT received: starting no new remote work')
    // The lock went with the process.
    expect(existsSync(join(state, 'lock'))).toBe(false)
  })

  it('SIGTERM while etcd starts: the wait for health stops, exit 143, flanneld never set up', async () => {
    const child = startKflan(['init', '-i', inventory, '--state-dir', state])
    await waitForLog(state, 'phase etcd (cluster)')
    process.kill(child.pid, 'SIGTERM')
    const r = await child.done
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(143)
    expect(r.stderr).toMatch(/interrupted by SIGTERM/)
    expect(r.stderr).toMatch(/init: INTERRUPTED \(SIGTERM\) after/)
    expect(r.stderr).toMatch(/log: \S+init-\S+\.log/)
    expect(await exists('lab-m1', '/opt/etcd/bin/etcd')).toBe(true)
    expect(await exists('lab-n1', '/etc/systemd/system/flanneld.service')).toBe(false)
  })

  it('a re-run converges, taking over a stale lock; the next one changes nothing', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout
    writeFileSync(
      join(state, 'lock'),
      JSON.stringify({
        pid: Number(dead),
        host: hostname(),
        command: 'kflan init (crashed)',
        started: '2026-12-01T00:00:00Z',
      }),
    )
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stderr).toContain(
      `took over the stale lock ${join(state, 'lock')} of PID ${dead} on ${hostname()} (\`kflan init (crashed)\``,
    )
    expect((await sshExec('lab-n1', 'cat /run/flannel/subnet.env')).stdout).toMatch(/FLANNEL_SUBNET=10\.244\./)
    const again = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('nothing changed')
  })

  it('etcd that cannot write its data dir: the error quotes its journal (no space left on device)', async () => {
    const dataDir = '/var/lib/etcd/default.etcd'
    // A full disk under the member's data dir, with etcd stopped: its next start fails.
    await sshExec(
      'lab-m1',
      `systemctl stop etcd && mkdir -p /root/etcd-data && cp -a ${dataDir}/. /root/etcd-data/ && rm -rf ${dataDir}/* && mount -t tmpfs -o size=64k tmpfs ${dataDir} && (dd if=/dev/zero of=${dataDir}/fill bs=4k 2>/dev/null; true)`,
    )
    try {
      const r = await kflan(['init', '-i', inventory, '--state-dir', state])
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1)
      expect(r.stderr).toMatch(/etcd is not healthy after 60s: lab-m1/)
      expect(r.stderr).toMatch(/lab-m1 journalctl -u etcd \(last lines\):\n[\s\S]*no space left on device/)
    } finally {
      await sshExec(
        'lab-m1',
        `systemctl stop etcd; umount ${dataDir}; cp -a /root/etcd-data/. ${dataDir}/ && systemctl start etcd`,
        {check: false},
      )
    }

    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
  })
})
