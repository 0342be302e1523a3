/** kflan join node against real lab hosts: a cluster initialised without one node, then grown. */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileStamps, kflan, labInventory, parseEnv, tempStateDir, unitStamps} from './kflan-helpers.js'
import {labDown, labUp, requireLab, sshExec} from './lab-helpers.js'

/** The lab inventory without lab-n3 (the spare host). */
const withoutSpare = (t: string) => t.replace(/ {2}- name: lab-n3\n(?: {4}.*\n)*/, '').replaceAll(', lab-n3]', ']')

async function docker0(h: string): Promise<string> {
  return parseEnv((await sshExec(h, 'cat /run/flannel/subnet.env')).stdout).FLANNEL_SUBNET.split('/')[0]
}

describe.skipIf(!requireLab())('kflan join node', () => {
  let before: string
  let full: string
  const state = tempStateDir()
  const existing = ['lab-m1', 'lab-n1', 'lab-n2']
  const stamps = () =>
    Promise.all(
      existing.map(
        async (h) =>
          (await unitStamps(h, ['etcd', 'flanneld', 'docker'])) +
          (await fileStamps(h, [
            '/etc/hosts',
            '/etc/systemd/system/flanneld.service',
            '/opt/etcd/cfg/etcd.conf',
            '/run/flannel/docker',
          ])),
      ),
    )

  beforeAll(async () => {
    await labUp({masters: 1, nodes: 3})
    before = labInventory(withoutSpare)
    full = labInventory()
    const r = await kflan(['init', '-i', before, '--state-dir', state])
    if (r.code !== 0) throw new Error(`init failed:\n${r.stdout}\n${r.stderr}`)
  })
  afterAll(async () => {
    await labDown()
  })

  it('refuses a name that is not in the inventory, or not a node (exit 2)', async () => {
    const unknown = await kflan(['join', 'node', 'lab-n9', '-i', full, '--state-dir', state])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/lab-n9 is not a host in .*; did you mean lab-n\d\?/)
    const master = await kflan(['join', 'node', 'lab-m1', '-i', full, '--state-dir', state])
    expect(master.code).toBe(2)
    expect(master.stderr).toMatch(/lab-m1 is not a node/)
  })

  it('sets up the new node without touching the existing hosts, and its pods reach the others', async () => {
    const was = await stamps()
    const r = await kflan(['join', 'node', 'lab-n3', '-i', full, '--state-dir', state])
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
    // The summary: one host changed (the new node), none other, and what to run next.
    expect(r.stdout).toMatch(
      /join node: done in [\d.]+ s\. 1 host: 1 changed, 0 unchanged; \d+ service \(re\)starts?\./,
    )
    expect(r.stdout).toMatch(/ {2}changed: lab-n3 \(\d+\)\n/)
    expect(r.stdout).not.toMatch(/^lab-n3: changed \d+/m) // the full list only with --verbose
    // join ends with a doctor run limited to the new node, pings included.
    expect(r.stdout).toMatch(/dataplane\.ping/)
    expect(r.stdout).toMatch(/flannel\.lease/)
    expect(await stamps()).toEqual(was)
    const mine = await docker0('lab-n3')
    for (const other of ['lab-n1', 'lab-n2']) {
      const theirs = await docker0(other)
      const ping = await sshExec('lab-n3', `ping -c 2 -W 2 -I ${mine} ${theirs}`, {check: false})
      expect(ping.code, `lab-n3 → ${other}: ${ping.stdout}`).toBe(0)
      const back = await sshExec(other, `ping -c 1 -W 2 -I ${theirs} ${mine}`, {check: false})
      expect(back.code, `${other} → lab-n3`).toBe(0)
    }
  })

  it('changes nothing when the node is joined again, and says so in JSON too', async () => {
    const r = await kflan(['join', 'node', 'lab-n3', '-i', full, '--state-dir', state])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('nothing changed: lab-n3 is already joined')
    const j = await kflan(['join', 'node', 'lab-n3', '-i', full, '--state-dir', state, '--json'])
    expect(j.code, j.stderr).toBe(0)
    const summary = JSON.parse(j.stdout)
    expect(summary).toMatchObject({
      command: 'join node',
      ok: true,
      hosts: {changed: [], unchanged: ['lab-n3'], failed: []},
      restarts: 0,
      changes: {},
    })
    expect(summary.doctor.ok).toBe(true)
  })
})
