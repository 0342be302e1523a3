/**
 * Least privilege in etcd on the lab (1 etcd member, 2 flannel nodes; the lab's etcd bundle and
 * the flannel tarball in its inventory, real flanneld when KFLAN_FLANNEL_TARBALL names one).
 * The cluster is first set up by kflan as it was before roles (built from git, the parent of the
 * commit that added src/etcd-auth.ts), then upgraded by this kflan's init.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, symlinkSync} from 'node:fs'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {kflan, labInventory, parseEnv, tempStateDir} from './kflan-helpers.js'
import {LAB, labDown, type LabHost, labUp, requireLab, run, sshExec} from './lab-helpers.js'

const OLD = '/tmp/kflan-e2e-before-roles'

/** Builds kflan as it was right before etcd roles, once (git archive + tsc, node_modules shared). */
function buildOldKflan(): string {
  const added = execFileSync(
    'git',
    ['-C', LAB.repo, 'log', '--format=%H', '--diff-filter=A', '-1', '--', 'src/etcd-auth.ts'],
    {encoding: 'utf8'},
  ).trim()
  if (!added) throw new Error('no commit adds src/etcd-auth.ts: cannot build the kflan before roles')
  const dir = join(OLD, added.slice(0, 12))
  if (!existsSync(join(dir, 'dist/commands/init.js'))) {
    mkdirSync(dir, {recursive: true})
    execFileSync('sh', ['-c', `git -C ${LAB.repo} archive ${added}^ | tar -x -C ${dir}`])
    if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(LAB.repo, 'node_modules'), join(dir, 'node_modules'))
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], {cwd: dir, stdio: 'ignore'})
  }

  return join(dir, 'bin/run.js')
}

const flannelEtcdctl = (m: LabHost) =>
  `ETCDCTL_API=3 etcdctl --cacert=/opt/flannel/ssl/ca.pem --cert=/opt/flannel/ssl/flanneld.pem --key=/opt/flannel/ssl/flanneld-key.pem --endpoints=https://${m.address}:2379`

describe.skipIf(!requireLab())('etcd roles: flanneld limited to its prefix, the admin key off the hosts', () => {
  let hosts: LabHost[]
  let m1: LabHost
  let nodes: LabHost[]
  let inventory: string
  let oldKflan: string
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 2})
    m1 = hosts.find((h) => h.role === 'master')!
    nodes = hosts.filter((h) => h.role === 'node')
    inventory = labInventory()
    oldKflan = buildOldKflan()
    const text = readFileSync(inventory, 'utf8')
    const tarball = /^flannel:\n[\s\S]*?tarball: (\S+)/m.exec(text)![1]
    const flanneld = execFileSync('sh', ['-c', `tar -xzOf ${tarball} flanneld | head -c 2 | od -An -c`], {
      encoding: 'utf8',
    })
    console.log(
      `auth e2e: etcd ${/version: "([^"]+)"/.exec(text)![1]}, flannel ${tarball} (${flanneld.includes('#') ? 'lab stand-in script' : 'real flanneld binary'}), old kflan ${oldKflan}`,
    )
  }, 600_000)
  afterAll(async () => {
    await labDown()
  })

  it("before roles: the admin key sits on the member and flanneld's certificate can write anywhere", async () => {
    const r = await run(process.execPath, [oldKflan, 'init', '-i', inventory, '--state-dir', state], {
      check: false,
      timeoutMs: 300_000,
    })
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect((await sshExec(m1, 'test -f /opt/etcd/ssl/kflan-key.pem', {check: false})).code).toBe(0)
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
