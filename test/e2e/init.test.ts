/**
 * kflan init against real lab hosts: 3 masters + 2 nodes, and the guides' topology (etcd on
 * master01, node01, node02; flannel + docker on the nodes). Nothing here is mocked.
 */
import {X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ETCDCTL, fileStamps, kflan, labInventory, parseEnv, tempStateDir, unitStamps} from './kflan-helpers.js'
import {labDown, labExec, type LabHost, labUp, requireLab, sshExec} from './lab-helpers.js'

const NETWORK_PREFIX = '10.244.'

/** Every file and binary init installs on a host of the 3+2 lab. */
const ETCD_FILES = [
  '/opt/etcd/cfg/etcd.conf',
  '/etc/systemd/system/etcd.service',
  '/opt/etcd/ssl/server.pem',
  '/opt/etcd/ssl/server-key.pem',
  '/opt/etcd/ssl/peer.pem',
  '/opt/etcd/bin/etcd',
  '/opt/etcd/bin/etcdctl',
  '/etc/hosts',
  '/etc/sysctl.d/99-kflan.conf',
]
const NODE_FILES = [
  '/etc/systemd/system/flanneld.service',
  '/etc/systemd/system/docker.service.d/10-kflan-flannel.conf',
  '/opt/flannel/bin/flanneld',
  '/opt/flannel/ssl/flanneld-key.pem',
  '/etc/hosts',
  '/etc/sysctl.d/99-kflan.conf',
  '/run/flannel/subnet.env',
  '/run/flannel/docker',
]

async function flannelState(h: string) {
  const env = parseEnv((await sshExec(h, 'cat /run/flannel/subnet.env')).stdout)
  const bridge = (await sshExec(h, 'ip -4 -o addr show dev docker0; cat /sys/class/net/docker0/mtu')).stdout
  return {env, docker0: /inet (\S+)/.exec(bridge)?.[1], mtu: Number(bridge.trim().split('\n').at(-1))}
}

/** The assertions the guides end with, for any topology. */
async function assertConverged(members: LabHost[], nodes: LabHost[]) {
  const endpoints = members.map((m) => `https://${m.address}:2379`).join(',')
  // Every member is healthy over TLS, seen from every other member.
  for (const m of members) {
    const r = await sshExec(m.name, `${ETCDCTL} --endpoints=${endpoints} endpoint health -w json`)
    const health = JSON.parse(r.stdout) as {endpoint: string; health: boolean}[]
    expect(health.map((e) => [e.endpoint, e.health]).sort()).toEqual(
      members.map((x) => [`https://${x.address}:2379`, true]).sort(),
    )
  }

  // member list equals the inventory.
  const list = (await sshExec(members[0].name, `${ETCDCTL} --endpoints=${endpoints} member list -w json`)).stdout
  const got = (JSON.parse(list).members as {name: string; peerURLs: string[]}[])
    .map((m) => `${m.name} ${m.peerURLs.join(',')}`)
    .sort()
  expect(got).toEqual(members.map((m) => `${m.name} https://${m.address}:2380`).sort())
  // A client without a certificate is refused.
  const noCert = await sshExec(
    members[0].name,
    `curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert /opt/etcd/ssl/ca.pem https://${members[0].address}:2379/health`,
    {check: false},
  )
  expect(noCert.code).not.toBe(0)
  const withCert = await sshExec(
    members[0].name,
    `curl -s --max-time 5 --cacert /opt/etcd/ssl/ca.pem --cert /opt/etcd/ssl/server.pem --key /opt/etcd/ssl/server-key.pem https://${members[0].address}:2379/health`,
  )
  expect(JSON.parse(withCert.stdout).health).toBe('true')
  // The network config is readable through the v3 API (what flannel >= 0.18 reads).
  const config = (
    await sshExec(
      members[0].name,
      `${ETCDCTL} --endpoints=${endpoints} get /coreos.com/network/config --print-value-only`,
    )
  ).stdout
  expect(JSON.parse(config)).toMatchObject({Network: '10.244.0.0/16', Backend: {Type: 'vxlan'}})
  // Leases: one per flannel host, distinct, inside Network, matching the subnet file.
  const leasesOut = (
    await sshExec(members[0].name, `${ETCDCTL} --endpoints=${endpoints} get /coreos.com/network/subnets/ --prefix`)
  ).stdout
    .trim()
    .split('\n')
  const leases = new Map<string, string>()
  for (let i = 0; i < leasesOut.length; i += 2)
    leases.set(JSON.parse(leasesOut[i + 1]).PublicIP, leasesOut[i].split('/').pop()!)
  const subnets = new Set<string>()
  for (const n of nodes) {
    const s = await flannelState(n.name)
    expect(s.env.FLANNEL_NETWORK).toBe('10.244.0.0/16')
    expect(s.env.FLANNEL_SUBNET.startsWith(NETWORK_PREFIX)).toBe(true)
    subnets.add(s.env.FLANNEL_SUBNET)
    const [gw, len] = s.env.FLANNEL_SUBNET.split('/')
    expect(leases.get(n.address)).toBe(`${gw.replace(/\.1$/, '.0')}-${len}`)
    // docker0 sits on the flannel gateway address with flannel's MTU.
    expect(s.docker0).toBe(s.env.FLANNEL_SUBNET)
    expect(s.mtu).toBe(Number(s.env.FLANNEL_MTU))
  }

  expect(subnets.size).toBe(nodes.length)
  expect(leases.size).toBe(nodes.length)
  // The guides' final check: one node's docker0 pings another node's docker0 across the overlay.
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue
      const from = (await flannelState(a.name)).docker0!.split('/')[0]
      const to = (await flannelState(b.name)).docker0!.split('/')[0]
      const ping = await sshExec(a.name, `ping -c 2 -W 2 -I ${from} ${to}`, {check: false})
      expect(ping.code, `${a.name} → ${b.name}: ${ping.stdout}`).toBe(0)
    }
  }
}

describe.skipIf(!requireLab())('kflan init on 3 masters + 2 nodes', () => {
  let hosts: LabHost[]
  let masters: LabHost[]
  let nodes: LabHost[]
  let inventory: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 3, nodes: 2})
    masters = hosts.filter((h) => h.role === 'master')
    nodes = hosts.filter((h) => h.role === 'node')
    inventory = labInventory()
  })
  afterAll(async () => {
    await labDown()
  })

  it('a dry run on fresh hosts plans the work and changes nothing on any host', async () => {
    const probe =
      'ls -d /var/lib/kflan /opt/etcd /opt/flannel /etc/systemd/system/etcd.service /etc/systemd/system/flanneld.service /etc/systemd/system/docker.service.d /etc/sysctl.d/99-kflan.conf 2>/dev/null; sha256sum /etc/hosts /etc/fstab; ip -o link show docker0 | cut -d" " -f2-5; hostname; find /etc /opt /usr/local -newer /tmp/kflan-marker 2>/dev/null'
    const before = new Map<string, string>()
    for (const h of hosts) {
      await sshExec(h.name, 'touch /tmp/kflan-marker; sleep 0.01')
      before.set(h.name, (await sshExec(h.name, probe, {check: false})).stdout)
    }

    const r = await kflan(['init', '-i', inventory, '--state-dir', state, '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/lab-m1: would change \d+/)
    expect(r.stdout).toMatch(/would write \/opt\/etcd\/cfg\/etcd\.conf/)
    expect(r.stdout).toMatch(/\+ETCD_NAME="lab-m1"/) // the unified diff of a new file
    expect(r.stdout).not.toMatch(/BEGIN (EC )?PRIVATE KEY/)
    for (const h of hosts)
      expect((await sshExec(h.name, probe, {check: false})).stdout, h.name).toBe(before.get(h.name))
  })

  it('brings up a TLS etcd cluster, flannel leases and docker in the flannel subnet', async () => {
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toMatch(/log: .*init-.*\.log/)
    // A summary read at a glance; the full change list is in the log (and behind --verbose).
    expect(r.stdout).toMatch(/^init: done in [\d.]+ s\. 5 hosts: 5 changed, 0 unchanged; \d+ service \(re\)starts\.$/m)
    expect(r.stdout).toMatch(
      /^ {2}changed: lab-m1 \(\d+\), lab-m2 \(\d+\), lab-m3 \(\d+\), lab-n1 \(\d+\), lab-n2 \(\d+\)$/m,
    )
    expect(r.stdout).toContain(`next: kflan doctor -i ${inventory} --state-dir ${state}`)
    expect(r.stdout).not.toMatch(/^ {2}- /m)
    const log = readFileSync(/log: (\S+)/.exec(r.stdout)![1], 'utf8')
    expect(log).toMatch(/lab-m1 note # changed \d+:\n(?: {2}- .*\n)* {2}- created \/opt\/etcd\/cfg\/etcd\.conf\n/)
    await assertConverged(masters, nodes)
  })

  it('changes nothing and restarts nothing when run again', async () => {
    const units = ['etcd', 'flanneld', 'docker']
    const stamp = async () =>
      Promise.all(
        hosts.map(
          async (h) =>
            (await unitStamps(h.name, units)) +
            (await fileStamps(h.name, h.role === 'master' ? ETCD_FILES : NODE_FILES)),
        ),
      )
    const before = await stamp()
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('nothing changed: the cluster already matches the inventory (5 hosts,')
    const j = await kflan(['init', '-i', inventory, '--state-dir', state, '--json'])
    expect(j.code, j.stderr).toBe(0)
    expect(JSON.parse(j.stdout)).toMatchObject({
      command: 'init',
      ok: true,
      dryRun: false,
      hosts: {changed: [], failed: []},
      restarts: 0,
      changes: {},
    })
    expect(await stamp()).toEqual(before)
  })

  it('keys are 0600 on the hosts and the log holds no secret', async () => {
    const modes = (await sshExec('lab-m1', 'stat -c "%a %n" /opt/etcd/ssl/*-key.pem')).stdout.trim().split('\n')
    // The member's own server and peer keys; kflan's admin key stays on the operator's machine (docs/safety.md).
    expect(modes.map((m) => m.split(' ')[1]).sort()).toEqual([
      '/opt/etcd/ssl/peer-key.pem',
      '/opt/etcd/ssl/server-key.pem',
    ])
    for (const m of modes) expect(m).toMatch(/^600 /)
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    const log = /log: (\S+)/.exec(r.stdout)![1]
    const text = readFileSync(log, 'utf8')
    expect(text).not.toMatch(/PRIVATE KEY/)
    expect(text).toMatch(/exec rc=0/)
  })

  it('re-issues certificates whose SANs changed and rolls etcd one member at a time, leaving the nodes alone', async () => {
    // extraSans adds a name to every server certificate: every member restarts, one at a time.
    const edited = labInventory((t) =>
      t.replace('etcd:\n  version:', 'etcd:\n  extraSans: [etcd.lab.internal]\n  version:'),
    )
    const before = await unitStamps('lab-n1', ['flanneld', 'docker'])
    const r = await kflan(['init', '-i', edited, '--state-dir', state, '--verbose'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/pki: reissued server-lab-m1: SANs changed: \+etcd\.lab\.internal/)
    expect(r.stdout).toMatch(/restart etcd/)
    expect(r.stdout.match(/restart etcd/g)?.length).toBe(3)
    const pem = (await sshExec('lab-m2', 'cat /opt/etcd/ssl/server.pem')).stdout
    expect(new X509Certificate(pem).subjectAltName).toContain('DNS:etcd.lab.internal')
    // Nodes only hold the client certificate: nothing of theirs changed.
    expect(await unitStamps('lab-n1', ['flanneld', 'docker'])).toBe(before)
    await assertConverged(masters, nodes)
  })

  it('refuses to change the network under existing leases without --force', async () => {
    const moved = labInventory((t) => t.replace('network: 10.244.0.0/16', 'network: 10.245.0.0/16'))
    const r = await kflan(['init', '-i', moved, '--state-dir', state])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/init failed on 1 host in phase network:/)
    expect(r.stderr).toMatch(
      /\/coreos\.com\/network\/config differs from the inventory while 2 flannel lease\(s\) exist: Network 10\.244\.0\.0\/16 → 10\.245\.0\.0\/16/,
    )
    expect(r.stderr).toMatch(/--force/)
    const config = (
      await sshExec(
        'lab-m1',
        `${ETCDCTL} --endpoints=https://${masters[0].address}:2379 get /coreos.com/network/config --print-value-only`,
      )
    ).stdout
    expect(JSON.parse(config).Network).toBe('10.244.0.0/16')
  })

  it('for flannel older than 0.18, enables the etcd v2 API (members restarted one at a time) and writes the config through it', async () => {
    // No flannel host here (this test is about etcd's v2 API); test/e2e/matrix.test.ts runs flannel 0.17.0 on flannel hosts.
    const old = labInventory((t) =>
      t.replace('version: "0.26.1"', 'version: "0.17.0"').replace(/flannel: \[[^\]]*\]/, 'flannel: []'),
    )
    const r = await kflan(['init', '-i', old, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout.match(/restart etcd/g)?.length).toBe(3)
    expect((await sshExec('lab-m2', 'cat /etc/systemd/system/etcd.service')).stdout).toMatch(/--enable-v2/)
    const v2 = await sshExec(
      'lab-m1',
      `ETCDCTL_API=2 /opt/etcd/bin/etcdctl --ca-file=/opt/etcd/ssl/ca.pem --cert-file=/opt/etcd/ssl/server.pem --key-file=/opt/etcd/ssl/server-key.pem --endpoints=https://${masters[0].address}:2379 get /coreos.com/network/config`,
    )
    expect(JSON.parse(v2.stdout)).toMatchObject({Network: '10.244.0.0/16', Backend: {Type: 'vxlan'}})
  })
})

describe.skipIf(!requireLab())("kflan init in the guides' topology, and a host that is down", () => {
  let hosts: LabHost[]
  let inventory: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 2})
    // master01, node01, node02: etcd on all three, flanneld + docker on the nodes.
    inventory = labInventory((t) => t.replace(/etcd: \[[^\]]*\]/, 'etcd: [lab-m1, lab-n1, lab-n2]'))
  })
  afterAll(async () => {
    await labDown()
  })

  it('stops after the connect phase when a host is unreachable, naming it', async () => {
    await labExec('lab-n2', 'systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh')
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/init failed on 1 host in phase connect:\n\s+- lab-n2: .*/)
    expect(r.stderr).toMatch(/hint: /)
    expect(r.stderr).toMatch(/log: /)
    // Nothing was changed on the reachable hosts.
    expect((await sshExec('lab-m1', 'ls /var/lib/kflan 2>&1', {check: false})).code).not.toBe(0)
    await labExec('lab-n2', 'systemctl start ssh')
  })

  it('converges once the host is back, and its data plane works', async () => {
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    const members = hosts // lab-m1, lab-n1, lab-n2 all run etcd
    const nodes = hosts.filter((h) => h.role === 'node')
    await assertConverged(members, nodes)
    const again = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(again.stdout).toContain('nothing changed')
  })
})

describe.skipIf(!requireLab())('kflan init as a non-root user with sudo, and host key verification', () => {
  const state = tempStateDir()
  let inventory: string

  beforeAll(async () => {
    const hosts = await labUp({masters: 1, nodes: 2})
    for (const h of hosts) {
      await sshExec(
        h.name,
        'useradd -m -s /bin/bash ops && install -d -o ops -g ops -m 700 ~ops/.ssh && install -o ops -g ops -m 600 /root/.ssh/authorized_keys ~ops/.ssh/ && echo "ops ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops',
      )
    }

    inventory = labInventory((t) => t.replace(/^ {2}user: root$/m, '  user: ops'))
  })
  afterAll(async () => {
    await labDown()
  })

  it('converges through sudo, and a re-run changes nothing', async () => {
    expect(readFileSync(inventory, 'utf8')).toMatch(/^ {2}user: ops$/m)
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    const log = readFileSync(/log: (\S+)/.exec(r.stdout)![1], 'utf8')
    expect(log).toMatch(/ops@10\.211\.\d+\.11/)
    expect((await sshExec('lab-n1', 'stat -c "%U %a" /opt/flannel/ssl/flanneld-key.pem')).stdout.trim()).toBe(
      'root 600',
    )
    const again = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(again.stdout).toContain('nothing changed')
  })

  it('verifies host keys: unknown hosts refused (naming the flag), recorded with --accept-new-host-keys, a changed key refused', async () => {
    const unpinned = labInventory((t) =>
      t.replaceAll(/^ {4}hostKey: .*\n/gm, '').replace(/^ {2}user: root$/m, '  user: ops'),
    )
    const fresh = tempStateDir()
    const refused = await kflan(['init', '-i', unpinned, '--state-dir', fresh])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/- lab-m1: unknown host key for 10\.211\.\d+\.11: ssh-ed25519 SHA256:/)
    expect(refused.stderr).toMatch(/--accept-new-host-keys/)
    const accepted = await kflan(['init', '-i', unpinned, '--state-dir', fresh, '--accept-new-host-keys'])
    expect(accepted.code, accepted.stderr).toBe(0)
    expect(readFileSync(join(fresh, 'known_hosts'), 'utf8').trim().split('\n')).toHaveLength(3)
    // lab-n1 gets a new host key (a reinstalled host, or someone in the middle).
    await labExec('lab-n1', 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh')
    const changed = await kflan(['init', '-i', unpinned, '--state-dir', fresh])
    expect(changed.code).toBe(1)
    expect(changed.stderr).toMatch(/- lab-n1: .*(changed|CHANGED)/)
    expect(changed.stderr).not.toMatch(/- lab-m1:/)
    // The operator checks the new key and pins it in the inventory (what lab.sh up and a VM builder
    // do for a re-made host): the pin wins over the old record, which is replaced, and the run says so.
    const fp = (await labExec('lab-n1', 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ')[1]
    const repinned = labInventory((t) =>
      t
        .replace(/^ {2}user: root$/m, '  user: ops')
        .replace(/(- name: lab-n1\n(?: {4}(?!hostKey).*\n)*) {4}hostKey: .*\n/, `$1    hostKey: "${fp}"\n`),
    )
    expect(readFileSync(repinned, 'utf8')).toContain(fp)
    const ok = await kflan(['init', '-i', repinned, '--state-dir', fresh])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout + ok.stderr).toMatch(
      /lab-n1: SSH host key changed to ssh-ed25519 SHA256:\S+, which the inventory's hostKey pins/,
    )
    const known = readFileSync(join(fresh, 'known_hosts'), 'utf8').trim().split('\n')
    expect(known).toHaveLength(3)
    // A wrong pin is still refused.
    const wrong = labInventory((t) =>
      t
        .replace(/^ {2}user: root$/m, '  user: ops')
        .replace(
          /(- name: lab-n1\n(?: {4}(?!hostKey).*\n)*) {4}hostKey: .*\n/,
          `$1    hostKey: "SHA256:${'A'.repeat(43)}"\n`,
        ),
    )
    const bad = await kflan(['init', '-i', wrong, '--state-dir', fresh])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/- lab-n1: host key of .* but the inventory expects/)
  })
})
