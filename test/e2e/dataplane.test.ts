/**
 * The data plane as users see it, on real flanneld (the lab's default bundle) and real dockerd:
 * 1 master + 2 nodes, one busybox container per node, for each backend (vxlan, vxlan
 * DirectRouting, host-gw, udp): the container's address in its host's flannel subnet, its eth0 MTU
 * equal to FLANNEL_MTU, container to container across hosts; and with ip-masq, traffic to a host
 * outside the pod network leaves with the node's address while container-to-container traffic
 * keeps the container's own (a busybox httpd CGI echoes REMOTE_ADDR on the receiving side).
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {
  type Container,
  inSubnet,
  ping,
  sourceSeenBy,
  startContainer,
  startEchoServer,
  subnetEnv,
  versions,
} from './dataplane-helpers.js'
import {kflan, labInventory, tempStateDir} from './kflan-helpers.js'
import {labDown, type LabHost, labUp, requireLab, sshExec} from './lab-helpers.js'

const BACKENDS: {name: string; yaml: string; route: (peer: LabHost) => RegExp}[] = [
  {name: 'vxlan', yaml: '{type: vxlan}', route: () => /dev flannel\.1 onlink/},
  {
    name: 'vxlan DirectRouting',
    yaml: '{type: vxlan, directRouting: true}',
    route: (peer) => new RegExp(`via ${peer.address.replaceAll('.', String.raw`\.`)} dev eth0`),
  },
  {
    name: 'host-gw',
    yaml: '{type: host-gw}',
    route: (peer) => new RegExp(`via ${peer.address.replaceAll('.', String.raw`\.`)} dev eth0`),
  },
  {name: 'udp', yaml: '{type: udp}', route: () => /dev flannel0/},
]

describe.skipIf(!requireLab())('data plane across hosts, per backend (real flanneld, real docker)', () => {
  let hosts: LabHost[]
  let n1: LabHost
  let n2: LabHost
  let m1: LabHost
  const state = tempStateDir()

  beforeAll(async () => {
    hosts = await labUp({masters: 1, nodes: 2})
    ;[m1, n1, n2] = ['lab-m1', 'lab-n1', 'lab-n2'].map((n) => hosts.find((h) => h.name === n)!)
  }, 600_000)
  afterAll(async () => {
    await labDown()
  })

  for (const [i, b] of BACKENDS.entries()) {
    it(`${b.name}: containers on two nodes reach each other inside their flannel subnets, MTU = FLANNEL_MTU`, async () => {
      const inventory = labInventory((t) => t.replace(/backend:\n\s+type: vxlan/, `backend: ${b.yaml}`))
      if (i > 0) {
        // A backend change under running leases is refused without --force: start clean.
        const reset = await kflan(['reset', '-i', inventory, '--state-dir', state, '--yes'])
        expect(reset.code, `${reset.stdout}\n${reset.stderr}`).toBe(0)
      }

      const t0 = Date.now()
      const init = await kflan(['init', '-i', inventory, '--state-dir', state])
      expect(init.code, `${init.stdout}\n${init.stderr}`).toBe(0)
      console.log(
        `${b.name}: kflan init ${((Date.now() - t0) / 1000).toFixed(1)} s, flannel ${JSON.stringify(await versions('lab-n1'))}`,
      )
      const doctor = await kflan(['doctor', '-i', inventory, '--state-dir', state, '--problems'])
      expect(doctor.code, doctor.stdout).toBe(0)

      const ctrs: Container[] = []
      for (const n of [n1, n2]) {
        const env = await subnetEnv(n.name)
        const c = await startContainer(n.name, `dp${i}`)
        expect(inSubnet(c.ip, env.FLANNEL_SUBNET), `${n.name}: container ${c.ip} in ${env.FLANNEL_SUBNET}`).toBe(true)
        expect(c.mtu, `${n.name}: container eth0 MTU`).toBe(Number(env.FLANNEL_MTU))
        ctrs.push(c)
        console.log(
          `${b.name}: ${n.name} FLANNEL_SUBNET=${env.FLANNEL_SUBNET} FLANNEL_MTU=${env.FLANNEL_MTU} container ${c.ip} mtu ${c.mtu}`,
        )
      }

      const peerSubnet = (await subnetEnv(n2.name)).FLANNEL_SUBNET.replace(/\.1\//, '.0/')
      const route = (await sshExec(n1.name, `ip -4 route show ${b.name === 'udp' ? '10.244.0.0/16' : peerSubnet}`))
        .stdout
      expect(route, `${n1.name}: route to ${peerSubnet}`).toMatch(b.route(n2))
      for (const [a, z] of [
        [ctrs[0], ctrs[1]],
        [ctrs[1], ctrs[0]],
      ]) {
        const p = await ping(a, z.ip, 3)
        console.log(`${b.name}: ${a.host}/${a.name} → ${z.host} ${z.ip}: ${p.received}/${p.sent}`)
        expect(p.received, p.out).toBe(3)
      }

      for (const c of ctrs) await sshExec(c.host, `docker rm -f ${c.name}`)
    }, 400_000)
  }

  it("ip-masq: to a host outside the pod network a container leaves with its node's address, to a container it keeps its own", async () => {
    // The last backend test left udp; go back to the lab's vxlan.
    const inventory = labInventory()
    await kflan(['reset', '-i', inventory, '--state-dir', state, '--yes'])
    const init = await kflan(['init', '-i', inventory, '--state-dir', state])
    expect(init.code, `${init.stdout}\n${init.stderr}`).toBe(0)
    expect((await subnetEnv(n1.name)).FLANNEL_IPMASQ).toBe('true')
    const client = await startContainer(n1.name, 'masq-client')
    const server = (await startEchoServer(n2.name, 'masq-server', 8080))!
    // The master is outside the pod network (no flanneld): its httpd runs on the host's network.
    await startEchoServer(m1.name, 'masq-outside', 8080, true)
    const seenByContainer = await sourceSeenBy(client, server.ip, 8080)
    const seenByMaster = await sourceSeenBy(client, m1.address, 8080)
    console.log(
      `ip-masq: client ${client.ip} on ${n1.name}; seen by the container on ${n2.name} as ${seenByContainer}, by ${m1.name} (${m1.address}) as ${seenByMaster}`,
    )
    expect(seenByContainer).toBe(client.ip)
    expect(seenByMaster).toBe(n1.address)
  }, 400_000)
})
