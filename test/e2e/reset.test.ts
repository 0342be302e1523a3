/**
 * kflan reset against real lab hosts (3 masters + 2 nodes): what init set up goes away, the
 * files kflan changed come back byte for byte, the leases leave etcd before it stops, and init
 * works again afterwards. Nothing here is mocked.
 */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {LAB, labDown, type LabHost, labUp, requireLab, run, type RunResult, sshExec} from './lab-helpers.js'

const KFLAN = join(LAB.repo, 'bin/run.js')
const ETCDCTL =
  'ETCDCTL_API=3 /opt/etcd/bin/etcdctl --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem'
const LEASES = '/coreos.com/network/subnets/'

/** `kflan ARGS` with stdin a pipe (not a terminal); never throws. */
function kflan(args: string[]): Promise<RunResult> {
  return run(process.execPath, [KFLAN, ...args], {check: false, timeoutMs: 240_000})
}

async function timed(what: string, args: string[]): Promise<RunResult> {
  const t0 = performance.now()
  const r = await kflan(args)
  console.log(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s (exit ${r.code})`)
  return r
}

function endpoints(masters: LabHost[]): string {
  return masters.map((m) => `https://${m.address}:2379`).join(',')
}

/** Leases in etcd as `subnet PublicIP`. */
async function leases(masters: LabHost[]): Promise<string[]> {
  const out = (
    await sshExec(masters[0].name, `${ETCDCTL} --endpoints=${endpoints(masters)} get ${LEASES} --prefix`)
  ).stdout.trim()
  if (!out) return []
  const lines = out.split('\n')
  const got: string[] = []
  for (let i = 0; i + 1 < lines.length; i += 2)
    got.push(`${lines[i].slice(LEASES.length)} ${JSON.parse(lines[i + 1]).PublicIP}`)
  return got.sort()
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(300)
  }
}

const docker0 = async (h: string) => /inet (\S+)/.exec((await sshExec(h, 'ip -4 -o addr show dev docker0')).stdout)?.[1]
const inFlannel = (cidr: string | undefined) => cidr !== undefined && cidr.startsWith('10.244.')

/** Everything kflan's stack leaves on a host, as one text: empty lines mean "nothing left". */
const LEFTOVERS = [
  'systemctl list-unit-files etcd.service flanneld.service --no-legend 2>/dev/null',
  'ps -eo comm,args | grep -E "^etcd |/opt/flannel/bin/flanneld" | grep -v grep',
  'ls -d /etc/systemd/system/docker.service.d /etc/systemd/system/etcd.service /etc/systemd/system/flanneld.service /opt/etcd /opt/flannel /run/flannel /var/lib/kflan /etc/sysctl.d/99-kflan.conf /etc/modules-load.d/kflan.conf /run/systemd/system/docker.service.d 2>/dev/null',
  'ip -o link show flannel.1 2>/dev/null',
  String.raw`iptables -S | grep -E "FLANNEL|10\.244\."`,
  String.raw`iptables -t nat -S | grep -E "FLANNEL|10\.244\."`,
  String.raw`ip route | grep "10\.244\."`,
].join('; ')

describe.skipIf(!requireLab())('kflan reset', () => {
  let masters: LabHost[]
  let nodes: LabHost[]
  let hosts: LabHost[]
  const state = mkdtempSync(join(tmpdir(), 'kflan-reset-e2e-'))
  const inv = () => ['-i', LAB.inventory, '--state-dir', state]
  /** /etc/hosts of every host before kflan touched it (base64). */
  const pristine = new Map<string, string>()
  const hostsFile = async (h: string) => (await sshExec(h, 'base64 -w0 /etc/hosts')).stdout

  beforeAll(async () => {
    hosts = await labUp({masters: 3, nodes: 2})
    masters = hosts.filter((h) => h.role === 'master')
    nodes = hosts.filter((h) => h.role === 'node')
    for (const h of hosts) pristine.set(h.name, await hostsFile(h.name))
    const r = await timed('init', ['init', ...inv()])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    // A key that survives a reset without --purge-data, and not one with it.
    await sshExec(masters[0].name, `${ETCDCTL} --endpoints=${endpoints(masters)} put /kflan-e2e/marker kept`)
  })
  afterAll(async () => {
    await labDown()
  })

  it('refuses to run without --yes when stdin is not a terminal (exit 2, nothing changed)', async () => {
    const r = await kflan(['reset', ...inv()])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/stdin is not a terminal/)
    expect(r.stderr).toMatch(/hint: pass --yes/)
    expect((await sshExec(nodes[0].name, 'systemctl is-active flanneld')).stdout.trim()).toBe('active')
  })

  it('--dry-run lists what it would do and changes nothing', async () => {
    const probe = `${LEFTOVERS}; sha256sum /etc/hosts; systemctl show docker -p InvocationID`
    const before = await Promise.all(hosts.map((h) => sshExec(h.name, probe, {check: false}).then((r) => r.stdout)))
    const r = await timed('reset --dry-run', ['reset', ...inv(), '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/lab-n1: would change \d+/)
    expect(r.stdout).toContain('stop and disable flanneld')
    expect(r.stdout).toMatch(/delete flannel lease 10\.244\.\d+\.0\/24/)
    expect(r.stdout).toContain('delete device flannel.1')
    expect(r.stdout).toContain('restore /etc/hosts from its backup')
    expect(r.stdout).toContain('stop and disable etcd')
    expect(r.stdout).not.toContain('delete the etcd data directory')
    const after = await Promise.all(hosts.map((h) => sshExec(h.name, probe, {check: false}).then((r2) => r2.stdout)))
    expect(after).toEqual(before)
  })

  it('--host <node> removes that node and its lease only; the rest keeps running; init brings it back', async () => {
    const [n1, n2] = nodes
    expect((await leases(masters)).length).toBe(2)
    const n1Lease = (await leases(masters)).find((l) => l.endsWith(` ${n1.address}`))
    // Someone edits /etc/hosts after init: reset takes kflan's block out and keeps that line.
    await sshExec(n2.name, 'echo "10.9.9.9 added-after-init" >> /etc/hosts')
    const r = await timed('reset --host lab-n2', ['reset', ...inv(), '--host', n2.name, '--yes', '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(await leases(masters)).toEqual([n1Lease])
    expect((await sshExec(n2.name, LEFTOVERS, {check: false})).stdout.trim()).toBe('')
    expect((await sshExec(n2.name, 'systemctl is-active docker')).stdout.trim()).toBe('active')
    expect(inFlannel(await docker0(n2.name))).toBe(false)
    expect(r.stdout).toContain("take kflan's edit out of /etc/hosts (edited since kflan changed it: later edits kept)")
    const kept = `${Buffer.from(pristine.get(n2.name)!, 'base64').toString()}10.9.9.9 added-after-init\n`
    expect(Buffer.from(await hostsFile(n2.name), 'base64').toString()).toBe(kept)
    pristine.set(n2.name, Buffer.from(kept).toString('base64')) // what the next init backs up
    // The others are untouched.
    expect((await sshExec(n1.name, 'systemctl is-active flanneld docker')).stdout.trim().split('\n')).toEqual([
      'active',
      'active',
    ])
    for (const m of masters) expect((await sshExec(m.name, 'systemctl is-active etcd')).stdout.trim()).toBe('active')
    // n1 drops its route to n2's old subnet once the lease is gone (flanneld watches the leases).
    await waitUntil(
      `${n1.name} drops the route to ${n2.name}`,
      async () => (await sshExec(n1.name, 'ip route | grep -c "dev flannel.1"', {check: false})).stdout.trim() === '0',
    )
    const again = await timed('init after reset --host lab-n2', ['init', ...inv()])
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0)
    expect((await leases(masters)).length).toBe(2)
  })

  it('--host <etcd member> keeps it in the member list (stopped), warns, and init starts it again', async () => {
    const m3 = masters[2]
    const others = masters.slice(0, 2)
    const r = await timed('reset --host lab-m3', ['reset', ...inv(), '--host', m3.name, '--yes'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stderr).toMatch(/warning: lab-m3: stays in `etcdctl member list`, stopped/)
    const list = (await sshExec(others[0].name, `${ETCDCTL} --endpoints=${endpoints(others)} member list`)).stdout
    expect(list).toContain('lab-m3')
    expect((await sshExec(m3.name, 'systemctl is-active etcd', {check: false})).stdout.trim()).not.toBe('active')
    // Another member alone would break quorum: refused, nothing changed.
    const refused = await kflan(['reset', ...inv(), '--host', others[1].name, '--yes'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(
      /refusing to reset lab-m2 alone: stopping lab-m2 leaves 1 of 3 members up; etcd needs 2 for quorum/,
    )
    expect((await sshExec(others[1].name, 'systemctl is-active etcd')).stdout.trim()).toBe('active')
    const again = await timed('init after reset --host lab-m3', ['init', ...inv()])
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0)
  })

  it('a full reset leaves no trace of kflan on any host; leases leave etcd before it stops', async () => {
    const m1 = masters[0]
    const before = await leases(masters)
    expect(before.length).toBe(2)
    // Watch the lease keys from lab-m1 for the whole reset: deletions must come while etcd runs.
    const rev = /"revision":(\d+)/.exec(
      (await sshExec(m1.name, `${ETCDCTL} --endpoints=${endpoints(masters)} get /coreos.com/network/config -w json`))
        .stdout,
    )![1]
    await sshExec(
      m1.name,
      `cp -r /opt/etcd/ssl /tmp/watch-ssl && cp /opt/etcd/bin/etcdctl /tmp/watch-etcdctl && (setsid nohup env ETCDCTL_API=3 /tmp/watch-etcdctl --cacert=/tmp/watch-ssl/ca.pem --cert=/tmp/watch-ssl/server.pem --key=/tmp/watch-ssl/server-key.pem --endpoints=${endpoints(masters)} watch --prefix ${LEASES} --rev=${Number(rev) + 1} > /tmp/lease-watch.out 2>/dev/null < /dev/null &)`,
    )
    await sleep(1500)

    const r = await timed('reset (full)', ['reset', ...inv(), '--yes'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    const watched = (await sshExec(m1.name, 'pkill -f "watch-etcd[c]tl"; cat /tmp/lease-watch.out')).stdout
    const deleted = [...watched.matchAll(/^DELETE\n(\S+)/gm)].map((m) => m[1].slice(LEASES.length)).sort()
    expect(deleted).toEqual(before.map((l) => l.split(' ')[0]))

    for (const h of hosts) {
      expect((await sshExec(h.name, LEFTOVERS, {check: false})).stdout.trim(), h.name).toBe('')
      expect(await hostsFile(h.name), `${h.name} /etc/hosts`).toBe(pristine.get(h.name))
      expect((await sshExec(h.name, 'systemctl is-active docker')).stdout.trim(), h.name).toBe('active')
      expect(inFlannel(await docker0(h.name)), `${h.name} docker0 ${await docker0(h.name)}`).toBe(false)
      expect((await sshExec(h.name, 'systemctl show docker -p DropInPaths --value')).stdout.trim()).toBe('')
    }

    // Without --purge-data the members keep their data.
    for (const m of masters)
      expect((await sshExec(m.name, 'test -d /var/lib/etcd/default.etcd/member && echo kept')).stdout.trim()).toBe(
        'kept',
      )
  })

  it('a second reset finds nothing to do, says so, and restarts nothing', async () => {
    const stamp = () =>
      Promise.all(
        hosts.map((h) => sshExec(h.name, 'systemctl show docker -p InvocationID --value').then((r) => r.stdout)),
      )
    const before = await stamp()
    const r = await timed('reset (second)', ['reset', ...inv(), '--yes'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('nothing to reset: kflan left nothing on lab-m1, lab-m2, lab-m3, lab-n1, lab-n2')
    expect(await stamp()).toEqual(before)
  })

  it('init after a reset that kept the data: the same etcd cluster comes back, fresh leases, and the overlay works', async () => {
    const r = await timed('init after full reset', ['init', ...inv()])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(
      (
        await sshExec(
          masters[0].name,
          `${ETCDCTL} --endpoints=${endpoints(masters)} get /kflan-e2e/marker --print-value-only`,
        )
      ).stdout.trim(),
    ).toBe('kept')
    // Only the new leases: the old ones were deleted, not left to expire.
    const now = await leases(masters)
    expect(now.map((l) => l.split(' ')[1]).sort()).toEqual(nodes.map((n) => n.address).sort())
    const [a, b] = await Promise.all(nodes.map((n) => docker0(n.name)))
    expect(inFlannel(a) && inFlannel(b)).toBe(true)
    const ping = await sshExec(nodes[0].name, `ping -c 2 -W 2 -I ${a!.split('/')[0]} ${b!.split('/')[0]}`, {
      check: false,
    })
    expect(ping.code, ping.stdout).toBe(0)
  })

  it('reset --purge-data deletes the etcd data; init then starts a fresh cluster', async () => {
    const r = await timed('reset --purge-data', ['reset', ...inv(), '--purge-data', '--yes'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    for (const h of hosts)
      expect(
        (await sshExec(h.name, `${LEFTOVERS}; ls -d /var/lib/etcd 2>/dev/null`, {check: false})).stdout.trim(),
        h.name,
      ).toBe('')
    const again = await timed('init after reset --purge-data', ['init', ...inv()])
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0)
    expect(
      (
        await sshExec(
          masters[0].name,
          `${ETCDCTL} --endpoints=${endpoints(masters)} get /kflan-e2e/marker --print-value-only`,
        )
      ).stdout.trim(),
    ).toBe('')
    expect((await leases(masters)).length).toBe(2)
  })
})
