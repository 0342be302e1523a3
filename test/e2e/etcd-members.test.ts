/**
 * Growing the etcd cluster with kflan init: members added to the inventory join the running
 * cluster one at a time (member add, initial cluster state "existing"), and a member that
 * `kflan reset --purge-data` removed comes back the same way. Real lab hosts.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ETCDCTL, kflan, labInventory, parseEnv, tempStateDir} from './kflan-helpers.js'
import {labDown, type LabHost, labUp, requireLab, sshExec} from './lab-helpers.js'

describe.skipIf(!requireLab())('etcd members added to the inventory join the running cluster', () => {
  let hosts: LabHost[]
  let full: string
  const state = tempStateDir()

  const members = async () => {
    const endpoints = hosts
      .filter((h) => h.role === 'master')
      .map((h) => `https://${h.address}:2379`)
      .join(',')
    const out = (await sshExec('lab-m1', `${ETCDCTL} --endpoints=${endpoints} member list -w json`)).stdout
    return (JSON.parse(out).members as {name: string}[]).map((m) => m.name).sort()
  }

  const healthy = async () => {
    const endpoints = hosts
      .filter((h) => h.role === 'master')
      .map((h) => `https://${h.address}:2379`)
      .join(',')
    const r = await sshExec('lab-m1', `${ETCDCTL} --endpoints=${endpoints} endpoint health -w json`, {check: false})
    return (JSON.parse(r.stdout || '[]') as {health: boolean}[]).filter((e) => e.health).length
  }

  const subnet = async () => parseEnv((await sshExec('lab-n1', 'cat /run/flannel/subnet.env')).stdout).FLANNEL_SUBNET

  beforeAll(async () => {
    hosts = await labUp({masters: 3, nodes: 1})
    full = labInventory()
  })
  afterAll(async () => {
    await labDown()
  })

  it('starts with one member, then two more join one at a time; leases survive', async () => {
    const one = labInventory((t) => t.replace(/etcd: \[[^\]]*\]/, 'etcd: [lab-m1]'))
    const first = await kflan(['init', '-i', one, '--state-dir', state])
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0)
    expect(await members()).toEqual(['lab-m1'])
    const before = await subnet()

    const r = await kflan(['init', '-i', full, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toMatch(/member add lab-m2 \(https:\/\/10\.211\.\d+\.12:2380\)/)
    expect(r.stdout).toMatch(/member add lab-m3 \(https:\/\/10\.211\.\d+\.13:2380\)/)
    expect(await members()).toEqual(['lab-m1', 'lab-m2', 'lab-m3'])
    expect(await healthy()).toBe(3)
    // flanneld now knows all three endpoints and kept its lease.
    expect((await sshExec('lab-n1', 'cat /etc/systemd/system/flanneld.service')).stdout).toMatch(
      /--etcd-endpoints=https:\/\/\S+:2379,https:\/\/\S+:2379,https:\/\/\S+:2379/,
    )
    expect(await subnet()).toBe(before)
    const again = await kflan(['init', '-i', full, '--state-dir', state])
    expect(again.stdout).toContain('nothing changed')
  })

  it('a member removed by reset --purge-data joins again on the next init', async () => {
    const reset = await kflan(['reset', '-i', full, '--state-dir', state, '--host', 'lab-m3', '--purge-data', '--yes'])
    expect(reset.code, `${reset.stdout}\n${reset.stderr}`).toBe(0)
    expect(await members()).toEqual(['lab-m1', 'lab-m2'])
    const r = await kflan(['init', '-i', full, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toMatch(/member add lab-m3/)
    expect(await members()).toEqual(['lab-m1', 'lab-m2', 'lab-m3'])
    expect(await healthy()).toBe(3)
  })
})
