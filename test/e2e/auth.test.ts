/**
 * Least privilege in etcd on the lab (1 etcd member, 2 flannel nodes; the lab's etcd bundle and
 * the flannel tarball in its inventory, real flanneld when KFLAN_FLANNEL_TARBALL names one).
 *
 * The upgrade starts from the layout kflan left before etcd roles: auth off (any certificate of
 * the cluster's CA may write anywhere) and the full-access admin certificate and key in
 * /opt/etcd/ssl on the member. The test sets that layout up on a cluster this kflan made (auth
 * disabled, kflan's users and roles deleted, the admin key copied onto the member) instead of
 * building the old kflan from git: CI's clone need not carry the history (a shallow or squashed
 * clone has no "commit before roles"), and the layout is all the upgrade reads.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ETCDCTL, kflan, labInventory, parseEnv, tempStateDir} from './kflan-helpers.js'
import {labDown, type LabHost, labUp, requireLab, run, scpTo, sshExec} from './lab-helpers.js'

const flannelEtcdctl = (m: LabHost) =>
  `ETCDCTL_API=3 etcdctl --cacert=/opt/flannel/ssl/ca.pem --cert=/opt/flannel/ssl/flanneld.pem --key=/opt/flannel/ssl/flanneld-key.pem --endpoints=https://${m.address}:2379`

describe.skipIf(!requireLab())('etcd roles: flanneld limited to its prefix, the admin key off the hosts', () => {
  let hosts: LabHost[]
  let m1: LabHost
  let nodes: LabHost[]
  let inventory: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 2})
    m1 = hosts.find((h) => h.role === 'master')!
    nodes = hosts.filter((h) => h.role === 'node')
    inventory = labInventory()
    const text = readFileSync(inventory, 'utf8')
    const tarball = /^flannel:\n[\s\S]*?tarball: (\S+)/m.exec(text)![1]
    console.log(`auth e2e: etcd ${/version: "([^"]+)"/.exec(text)![1]}, flannel ${tarball}`)
  }, 600_000)
  afterAll(async () => {
    await labDown()
  })

  it("before roles: the admin key sits on the member and flanneld's certificate can write anywhere", async () => {
    const r = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    // Back to the layout before roles (as root: the member's own certificate).
    const e = `${ETCDCTL} --endpoints=https://${m1.address}:2379`
    await sshExec(m1, `${e} auth disable`)
    const users = (await sshExec(m1, `${e} user list`)).stdout.split('\n').filter(Boolean)
    expect(users).toEqual(expect.arrayContaining(['flanneld', 'kflan', 'lab-m1', 'root']))
    for (const u of users) await sshExec(m1, `${e} user delete ${u}`)
    await sshExec(m1, `${e} role delete flannel`)
    for (const f of ['kflan.pem', 'kflan-key.pem']) await scpTo(m1, join(state, 'pki', f), `/opt/etcd/ssl/${f}`)
    // Installed by kflan back then: listed as kflan's own file (src/remote/state-dir.ts statePaths().managed).
    await sshExec(
      m1,
      String.raw`chmod 0600 /opt/etcd/ssl/kflan-key.pem && printf "%s\n" /opt/etcd/ssl/kflan.pem /opt/etcd/ssl/kflan-key.pem >> /var/lib/kflan/managed`,
    )

    expect((await sshExec(m1, `${e} user list`)).stdout.trim()).toBe('')
    const put = await sshExec(
      nodes[0],
      `${flannelEtcdctl(m1)} put /outside-the-prefix x && ${flannelEtcdctl(m1)} del /outside-the-prefix`,
      {check: false},
    )
    expect(put.code, put.stderr).toBe(0)
  })

  it('init upgrades the cluster to roles and removes the admin key from the member; a re-run changes nothing', async () => {
    const r = await kflan(['init', '-i', inventory, '--state-dir', state, '--verbose'])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toContain('etcd auth: user add flanneld (certificate CN, no password)')
    expect(r.stdout).toContain('etcd auth: grant readwrite /coreos.com/network/subnets (prefix) to role flannel')
    expect(r.stdout).toContain('etcd auth: auth enable')
    expect(r.stdout).toContain('remove /opt/etcd/ssl/kflan.pem, /opt/etcd/ssl/kflan-key.pem')
    expect((await sshExec(m1, 'ls /opt/etcd/ssl')).stdout.split('\n').sort().filter(Boolean)).toEqual([
      'ca.pem',
      'peer-key.pem',
      'peer.pem',
      'server-key.pem',
      'server.pem',
    ])
    const again = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('nothing changed')
  })

  it("with flanneld's certificate: a write outside the prefix and any change to the config are refused; reads and leases work", async () => {
    const e = flannelEtcdctl(m1)
    for (const cmd of [
      'put /outside-the-prefix x',
      'del /coreos.com/network/config',
      'put /coreos.com/network/config {}',
      'get /registry --prefix',
      'put /coreos.com/network/other x',
    ]) {
      const r = await sshExec(nodes[0], `${e} ${cmd}`, {check: false})
      expect(r.code, cmd).not.toBe(0)
      expect(r.stderr, cmd).toContain('etcdserver: permission denied')
    }

    expect(
      JSON.parse((await sshExec(nodes[0], `${e} get /coreos.com/network/config --print-value-only`)).stdout),
    ).toMatchObject({Network: '10.244.0.0/16'})
    const leases = (await sshExec(nodes[0], `${e} get /coreos.com/network/subnets --prefix --keys-only`)).stdout
      .split('\n')
      .filter(Boolean)
    expect(leases.length).toBe(nodes.length)
    // The admin certificate still works from the operator's machine, where it stays.
    const pki = join(state, 'pki')
    const admin = await run(
      'etcdctl',
      [
        `--cacert=${pki}/ca.pem`,
        `--cert=${pki}/kflan.pem`,
        `--key=${pki}/kflan-key.pem`,
        `--endpoints=https://${m1.address}:2379`,
        'put',
        '/kflan-admin-check',
        'x',
      ],
      {check: false, env: {...process.env, ETCDCTL_API: '3'}},
    )
    expect(admin.code, admin.stderr).toBe(0)
  })

  it('flannel still works under its role: flanneld restarted, leases renewed, the overlay pings, doctor is green', async () => {
    for (const n of nodes) await sshExec(n, 'systemctl restart flanneld && systemctl is-active flanneld')
    for (const n of nodes) {
      const env = parseEnv((await sshExec(n, 'cat /run/flannel/subnet.env')).stdout)
      expect(env.FLANNEL_SUBNET).toMatch(/^10\.244\./)
      const journal = (await sshExec(n, 'journalctl -u flanneld --no-pager -o cat -n 200')).stdout
      expect(journal).not.toMatch(/permission denied/i)
    }

    const gw = async (n: LabHost) =>
      parseEnv((await sshExec(n, 'cat /run/flannel/subnet.env')).stdout).FLANNEL_SUBNET.split('/')[0]
    const ping = await sshExec(nodes[0], `ping -c 2 -W 2 -I ${await gw(nodes[0])} ${await gw(nodes[1])}`, {
      check: false,
    })
    expect(ping.code, ping.stdout).toBe(0)
    const doctor = await kflan(['doctor', '-i', inventory, '--state-dir', state])
    expect(doctor.code, `${doctor.stdout}\n${doctor.stderr}`).toBe(0)
  })
})
