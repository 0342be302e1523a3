/**
 * flannel older than 0.18 keeps its config and leases in the etcd v2 store: real flanneld 0.17.0
 * on Debian's etcd 3.4.23 (kflan starts it with --enable-v2), 1 master + 2 nodes. init waits for
 * the leases through the v2 API (src/cluster/leases.ts), docker0 lands in the leased subnet, a
 * container on one node pings one on the other, doctor is green and a re-run changes nothing.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {expectWhole, inSubnet, startContainer, subnetEnv, versions} from './dataplane-helpers.js'
import {kflan, labInventory, tempStateDir} from './kflan-helpers.js'
import {labDown, type LabHost, labUp, requireLab, sshExec} from './lab-helpers.js'

const V2 =
  'ETCDCTL_API=2 /opt/etcd/bin/etcdctl --ca-file=/opt/etcd/ssl/ca.pem --cert-file=/opt/etcd/ssl/server.pem --key-file=/opt/etcd/ssl/server-key.pem'

describe.skipIf(!requireLab())('flannel 0.17.0 (etcd v2 API) on etcd 3.4.23', () => {
  let hosts: LabHost[]
  let m1: LabHost
  let inventory: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 2, flannel: '0.17.0', etcd: '3.4.23'})
    m1 = hosts.find((h) => h.name === 'lab-m1')!
    inventory = labInventory()
  }, 900_000)
  afterAll(async () => {
    await labDown()
  })

  it('init converges: leases through v2, docker0 in its subnet, containers ping across nodes', async () => {
    const t0 = Date.now()
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    const v = await versions('lab-n1')
    console.log(`flannel-v2: init ${((Date.now() - t0) / 1000).toFixed(1)} s on ${JSON.stringify(v)}`)
    expect(v.flannel).toBe('0.17.0')
    expect(v.flanneld).toMatch(/0\.17\.0/)
    const ep = `--endpoints=https://${m1.address}:2379`
    const listing = (await sshExec(m1.name, `${V2} ${ep} ls /coreos.com/network/subnets`)).stdout
      .trim()
      .split('\n')
      .sort()
    // Nothing in the v3 store: flannel 0.17 never wrote there.
    const v3 = (
      await sshExec(
        m1.name,
        `ETCDCTL_API=3 /opt/etcd/bin/etcdctl --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem ${ep} get /coreos.com/network/subnets/ --prefix --keys-only`,
      )
    ).stdout.trim()
    expect(v3).toBe('')
    const ctrs = []
    for (const n of ['lab-n1', 'lab-n2']) {
      const env = await subnetEnv(n)
      const key = `/coreos.com/network/subnets/${env.FLANNEL_SUBNET.replace(/\.1\/(\d+)$/, '.0-$1')}`
      expect(listing).toContain(key)
      const value = JSON.parse((await sshExec(m1.name, `${V2} ${ep} get ${key}`)).stdout)
      expect(value.PublicIP).toBe(hosts.find((h) => h.name === n)!.address)
      const bridge = (await sshExec(n, 'ip -4 -o addr show dev docker0')).stdout
      expect(bridge).toContain(`inet ${env.FLANNEL_SUBNET} `)
      const c = await startContainer(n, 'v2c')
      expect(inSubnet(c.ip, env.FLANNEL_SUBNET)).toBe(true)
      expect(c.mtu).toBe(Number(env.FLANNEL_MTU))
      ctrs.push(c)
    }

    await expectWhole('flannel-v2', ctrs[0], ctrs[1], inventory, state)
  }, 600_000)
})
