/**
 * firewalld on the hosts, both `preflight.firewall` modes, on real flanneld and Debian's firewalld
 * (installed in the lab image, disabled there; started here): 1 master + 2 nodes.
 * - disable: init stops and disables firewalld on every host; the data plane works.
 * - open: firewalld keeps running with etcd's and the backend's ports open (and the pod network
 *   allowed through); etcd, leases, container-to-container pings and doctor all work through it.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {expectWhole, ping, startContainer, versions} from './dataplane-helpers.js'
import {kflan, labInventory, tempStateDir} from './kflan-helpers.js'
import {labDown, labUp, requireLab, sshExec} from './lab-helpers.js'

const HOSTS = ['lab-m1', 'lab-n1', 'lab-n2']

async function startFirewalld() {
  for (const h of HOSTS) {
    await sshExec(h, 'systemctl start firewalld && firewall-cmd --state')
  }
}

describe.skipIf(!requireLab())('firewalld: preflight.firewall disable and open', () => {
  const state = tempStateDir()

  beforeAll(async () => {
    await labUp({masters: 1, nodes: 2})
  }, 600_000)
  afterAll(async () => {
    await labDown()
  })

  it('disable: init stops and disables a running firewalld, and the cluster works', async () => {
    await startFirewalld()
    const inventory = labInventory()
    const r = await kflan(['init', '-i', inventory, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toContain('stop and disable firewalld')
    console.log(`firewalld disable on ${JSON.stringify(await versions('lab-n1'))}`)
    for (const h of HOSTS) {
      const st = (
        await sshExec(h, 'systemctl is-active firewalld; systemctl is-enabled firewalld', {check: false})
      ).stdout.split('\n')
      expect(st.slice(0, 2), h).toEqual(['inactive', 'disabled'])
    }

    const a = await startContainer('lab-n1', 'fw1')
    const b = await startContainer('lab-n2', 'fw2')
    expect((await ping(a, b.ip)).received).toBe(3)
    expect((await kflan(['doctor', '-i', inventory, '--state-dir', state, '--problems'])).code).toBe(0)
  }, 400_000)

  it('open: firewalld keeps running with the ports open, and etcd, flannel, containers and doctor work through it', async () => {
    const inventory = labInventory((t) => `${t.trimEnd()}\npreflight:\n  firewall: open\n`)
    await kflan(['reset', '-i', inventory, '--state-dir', state, '--yes'])
    await startFirewalld()
    const r = await kflan(['init', '-i', inventory, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toMatch(/open firewalld ports .*2379\/tcp/)
    expect(r.stdout).toMatch(/open firewalld ports .*8472\/udp/)
    for (const h of HOSTS) {
      expect((await sshExec(h, 'firewall-cmd --state')).stdout.trim(), h).toBe('running')
      const ports = (await sshExec(h, 'firewall-cmd --list-ports; firewall-cmd --permanent --list-ports')).stdout
      console.log(`firewalld open: ${h} ports ${ports.trim().replaceAll('\n', ' | ')}`)
      expect(ports).toMatch(h === 'lab-m1' ? /2379\/tcp/ : /8472\/udp/)
      if (h !== 'lab-m1')
        expect((await sshExec(h, 'firewall-cmd --zone=trusted --list-sources')).stdout).toContain('10.244.0.0/16')
    }

    const a = await startContainer('lab-n1', 'fw3')
    const b = await startContainer('lab-n2', 'fw4')
    await expectWhole('firewalld open', a, b, inventory, state)
    // Why the trusted source: without it (runtime only, on the receiving node) firewalld rejects the forwarded pods' traffic.
    await sshExec('lab-n2', 'firewall-cmd --zone=trusted --remove-source=10.244.0.0/16')
    const without = await ping(a, b.ip)
    console.log(`firewalld open, pod network not trusted on lab-n2: container ping ${without.received}/${without.sent}`)
    await sshExec('lab-n2', 'firewall-cmd --zone=trusted --add-source=10.244.0.0/16')
    expect(without.received).toBe(0)
  }, 400_000)
})
