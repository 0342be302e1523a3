/**
 * The lab itself: real hosts boot, talk to each other, run docker containers, vxlan, the etcd and
 * flannel bundles (real etcd and flanneld built from their Go modules by test/lab/bundles.sh;
 * default versions), firewalld can start, and `lab.sh down` leaves nothing behind. See docs/lab.md.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse as parseYaml} from 'yaml'

import {
  LAB,
  labDown,
  labExec,
  type LabHost,
  labUp,
  readHosts,
  requireLab,
  run,
  runLab,
  scpTo,
  sshExec,
} from './lab-helpers.js'

/** Lab N (KFLAN_LAB_ID) has its own /24 and names (docs/lab.md). */
const LAB_ID = process.env.KFLAN_LAB_ID ?? '0'
const SFX = LAB_ID === '0' ? '' : LAB_ID
const NET = `10.211.${LAB_ID}`
const ETCD_ADDR = `${NET}.11`
const ETCD_URL = `https://${ETCD_ADDR}:2379`
const PKI = '/etc/lab-test-pki'
const FLANNEL_DIR = '/opt/lab-flannel'

/** A throwaway CA with an etcd server cert (for lab-m1) and a client cert. */
function makePki(dir: string): void {
  const script = `
set -e
cd "${dir}"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=lab-test-ca 2>/dev/null
printf 'subjectAltName=IP:${ETCD_ADDR},IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
printf 'extendedKeyUsage=clientAuth\\n' > client.ext
for n in server client; do
  openssl req $ec -keyout $n.key -out $n.csr -subj /CN=lab-$n 2>/dev/null
  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 -extfile $n.ext 2>/dev/null
done
`
  execFileSync('sh', ['-c', script])
}

const etcdctl = (cmd: string) =>
  `ETCDCTL_API=3 /opt/lab-etcd/etcdctl --endpoints=${ETCD_URL} --cacert=${PKI}/ca.pem --cert=${PKI}/client.pem --key=${PKI}/client.key ${cmd}`

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(500)
  }

  throw new Error(`timed out waiting for ${what}`)
}

const envValue = (text: string, key: string): string | undefined => text.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1]

describe.skipIf(!requireLab())('lab', () => {
  let hosts: LabHost[] = []
  let pkiDir = ''

  beforeAll(async () => {
    await labDown()
    hosts = await labUp({masters: 3, nodes: 2})
    pkiDir = mkdtempSync(join(tmpdir(), 'kflan-lab-pki-'))
    makePki(pkiDir)
  })

  afterAll(async () => {
    if (pkiDir) rmSync(pkiDir, {recursive: true, force: true})
    await labDown()
  })

  it('a wrong argument is an input error (exit 2) naming it, and the running lab is left alone', async () => {
    for (const args of [
      ['--etcd'],
      ['--flannel='],
      ['--nodes'],
      ['--masters', 'x'],
      ['--bogus'],
      ['--masters', '0', '--nodes', '0'],
    ]) {
      const r = await runLab(['up', ...args], {check: false})
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(/^lab: error: .*\(lab\.sh help lists the arguments\)/)
    }

    const unknown = await runLab(['up', '--etcd', '9.9.9'], {check: false})
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('9.9.9')
    for (const h of hosts) expect((await sshExec(h.name, 'true')).code).toBe(0)
  })

  it('describes itself: hosts.json, known_hosts, key, a valid kflan inventory', async () => {
    expect(hosts.map((h) => `${h.name}=${h.address}/${h.role}`)).toEqual([
      `lab-m1=${NET}.11/master`,
      `lab-m2=${NET}.12/master`,
      `lab-m3=${NET}.13/master`,
      `lab-n1=${NET}.21/node`,
      `lab-n2=${NET}.22/node`,
    ])
    const known = readFileSync(LAB.knownHosts, 'utf8')
    for (const h of hosts) {
      expect(h.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
      expect(h.hostKeyLine).toMatch(new RegExp(`^${h.address.replaceAll('.', String.raw`\.`)} ssh-ed25519 AAAA`))
      expect(known).toContain(h.hostKeyLine)
    }

    expect(new Set(hosts.map((h) => h.hostKey)).size).toBe(hosts.length) // fresh key per host
    expect(statSync(LAB.key).mode & 0o777).toBe(0o600)

    const inv = parseYaml(readFileSync(LAB.inventory, 'utf8'))
    expect(inv.ssh).toEqual({user: 'root', port: 22, identityFile: LAB.key})
    expect(inv.hosts.map((h: {name: string}) => h.name)).toEqual(hosts.map((h) => h.name))
    expect(inv.roles.etcd).toEqual(['lab-m1', 'lab-m2', 'lab-m3'])
    expect(inv.roles.flannel).toEqual(['lab-n1', 'lab-n2'])
    expect(existsSync(inv.etcd.tarball)).toBe(true)
    expect(existsSync(inv.flannel.tarball)).toBe(true)

    // And kflan itself accepts it (src/inventory is the schema's owner).
    const {parseInventory} = await import('../../src/inventory/load.js')
    const result = parseInventory(readFileSync(LAB.inventory, 'utf8'), LAB.inventory, {checkFiles: 'error'})
    expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  })

  it('every host answers SSH with the lab key and a checked host key', async () => {
    const names = await Promise.all(hosts.map((h) => sshExec(h, 'hostname; id -u')))
    expect(names.map((r) => r.stdout.trim())).toEqual(hosts.map((h) => `${h.name}\n0`))
  })

  it('every host booted systemd (running or degraded) with docker active', async () => {
    for (const h of hosts) {
      const state = await sshExec(h, 'timeout 60 systemctl is-system-running --wait', {check: false})
      expect(state.stdout.trim(), `${h.name}: ${state.stdout}`).toMatch(/^(running|degraded)$/)
      const docker = await sshExec(h, 'systemctl is-active docker', {check: false})
      expect(docker.stdout.trim(), h.name).toBe('active')
    }
  })

  it('every host pings every other host over the lab bridge', async () => {
    await Promise.all(
      hosts.map(async (from) => {
        const others = hosts.filter((h) => h !== from).map((h) => h.address)
        const cmd = others.map((a) => `ping -c1 -W2 ${a} >/dev/null || echo "no reply from ${a}"`).join('; ')
        const r = await sshExec(from, cmd)
        expect(r.stdout, from.name).toBe('')
      }),
    )
  })

  it('hosts can set net sysctls and create vxlan devices', async () => {
    const r = await sshExec(
      'lab-n1',
      'sysctl -w net.ipv4.ip_forward=1 && cat /proc/sys/net/ipv4/ip_forward && ' +
        `ip link add vxlab0 type vxlan id 77 dstport 4789 local ${NET}.21 dev eth0 nolearning && ` +
        'ip -d link show vxlab0 && ip link del vxlab0 && ls /proc/sys/net/bridge/bridge-nf-call-iptables',
    )
    expect(r.stdout).toContain('net.ipv4.ip_forward = 1')
    expect(r.stdout).toMatch(/vxlan id 77 .*dstport 4789/)
  })

  it('every host runs docker containers from the lab image (kflan-lab/busybox:1)', async () => {
    await Promise.all(
      hosts.map(async (h) => {
        const r = await sshExec(h, "docker run --rm kflan-lab/busybox:1 sh -c 'echo ok'")
        expect(r.stdout.trim(), h.name).toBe('ok')
      }),
    )
  })

  it('firewalld is installed, disabled and stopped, and can start', async () => {
    const h = 'lab-n2'
    const state = await sshExec(h, 'systemctl is-enabled firewalld; systemctl is-active firewalld', {check: false})
    expect(state.stdout.trim().split('\n')).toEqual(['disabled', 'inactive'])
    try {
      await sshExec(h, 'systemctl start firewalld')
      expect((await sshExec(h, 'firewall-cmd --state')).stdout.trim()).toBe('running')
    } finally {
      await sshExec(h, 'systemctl stop firewalld', {check: false})
    }

    // Stopped again: firewalld leaves no rule behind that would block the lab.
    const ping = await sshExec('lab-n1', `ping -c1 -W2 ${hosts.find((x) => x.name === h)!.address}`, {check: false})
    expect(ping.code).toBe(0)
  })

  it('lab.sh exec reaches a host without SSH (fault injection)', async () => {
    await labExec('lab-m3', 'systemctl stop ssh.service')
    const down = await sshExec('lab-m3', 'true', {check: false})
    expect(down.code).not.toBe(0)
    const hostname = await labExec('lab-m3', 'hostname')
    expect(hostname.stdout.trim()).toBe('lab-m3')
    await labExec('lab-m3', 'systemctl start ssh.service')
    await waitFor('sshd back on lab-m3', async () => (await sshExec('lab-m3', 'true', {check: false})).code === 0)
  })

  it("the etcd bundle's etcd starts a single-member TLS cluster", async () => {
    const inv = parseYaml(readFileSync(LAB.inventory, 'utf8'))
    const m1 = 'lab-m1'
    await sshExec(m1, `mkdir -p ${PKI} /opt/lab-etcd`)
    for (const f of ['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key'])
      await scpTo(m1, join(pkiDir, f), `${PKI}/${f}`)
    await scpTo(m1, inv.etcd.tarball, '/tmp/etcd.tar.gz')
    await sshExec(
      m1,
      'tar -xzf /tmp/etcd.tar.gz -C /opt/lab-etcd --strip-components=1 && ' +
        `systemd-run --unit=lab-etcd /opt/lab-etcd/etcd --name lab-m1 --data-dir /var/lib/lab-etcd ` +
        `--listen-client-urls ${ETCD_URL} --advertise-client-urls ${ETCD_URL} ` +
        `--listen-peer-urls https://${ETCD_ADDR}:2380 --initial-advertise-peer-urls https://${ETCD_ADDR}:2380 ` +
        `--initial-cluster lab-m1=https://${ETCD_ADDR}:2380 --initial-cluster-state new ` +
        `--cert-file ${PKI}/server.pem --key-file ${PKI}/server.key --trusted-ca-file ${PKI}/ca.pem --client-cert-auth ` +
        `--peer-cert-file ${PKI}/server.pem --peer-key-file ${PKI}/server.key --peer-trusted-ca-file ${PKI}/ca.pem --peer-client-cert-auth`,
    )
    await waitFor(
      'etcd healthy',
      async () => (await sshExec(m1, etcdctl('endpoint health'), {check: false})).code === 0,
    )
    const members = await sshExec(m1, etcdctl('member list'))
    expect(members.stdout.trim().split('\n')).toHaveLength(1)
    const version = await sshExec(m1, '/opt/lab-etcd/etcd --version')
    expect(version.stdout).toContain(`etcd Version: ${inv.etcd.version}`)
  })

  describe("the flannel bundle's real flanneld", () => {
    const nodes = ['lab-n1', 'lab-n2']
    const unit = (extra: string) => `[Unit]
Description=flanneld (lab test)
[Service]
Type=notify
ExecStart=${FLANNEL_DIR}/flanneld --etcd-endpoints=${ETCD_URL} --etcd-cafile=${PKI}/ca.pem --etcd-certfile=${PKI}/client.pem --etcd-keyfile=${PKI}/client.key --iface=eth0 ${extra}
`
    const subnetEnv: Record<string, string> = {}

    beforeAll(async () => {
      const inv = parseYaml(readFileSync(LAB.inventory, 'utf8'))
      const unitFile = join(pkiDir, 'flanneld-lab.service')
      writeFileSync(unitFile, unit('--ip-masq'))
      await Promise.all(
        nodes.map(async (n) => {
          await sshExec(n, `mkdir -p ${PKI} ${FLANNEL_DIR}`)
          for (const f of ['ca.pem', 'client.pem', 'client.key']) await scpTo(n, join(pkiDir, f), `${PKI}/${f}`)
          await scpTo(n, inv.flannel.tarball, '/tmp/flannel.tar.gz')
          await scpTo(n, unitFile, '/etc/systemd/system/flanneld-lab.service')
          await sshExec(n, `tar -xzf /tmp/flannel.tar.gz -C ${FLANNEL_DIR} && systemctl daemon-reload`)
        }),
      )
    })

    it('rejects an unknown flag like flannel (message + usage on stderr, exit 0) and prints its version', async () => {
      const r = await sshExec('lab-n1', `${FLANNEL_DIR}/flanneld --no-such-flag --iface eth0`, {check: false})
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/^flag provided but not defined: -no-such-flag\nUsage: .*flanneld \[OPTION\]\.\.\.\n/)
      expect(r.stderr).toContain('-etcd-endpoints string')
      const v = await sshExec('lab-n1', `${FLANNEL_DIR}/flanneld --version`)
      const inv = parseYaml(readFileSync(LAB.inventory, 'utf8'))
      expect(v.stderr.trim()).toBe(`v${inv.flannel.version}`)
      expect(v.stdout).toBe('')
    })

    it('waits for its config, leases distinct subnets and becomes ready (Type=notify)', async () => {
      // No config yet: the units stay "activating" and flanneld logs flannel's message.
      await Promise.all(nodes.map((n) => sshExec(n, 'systemctl start --no-block flanneld-lab')))
      await waitFor('the missing-config message', async () => {
        const log = await sshExec('lab-n1', 'journalctl -u flanneld-lab --no-pager', {check: false})
        return log.stdout.includes('Did you create your config using etcdv3 API?')
      })
      expect((await sshExec('lab-n1', 'systemctl is-active flanneld-lab', {check: false})).stdout.trim()).toBe(
        'activating',
      )

      const config = JSON.stringify({Network: '10.244.0.0/16', Backend: {Type: 'vxlan'}})
      await sshExec('lab-m1', etcdctl(`put /coreos.com/network/config '${config}'`))
      for (const n of nodes) {
        await waitFor(
          `${n} flanneld active`,
          async () => (await sshExec(n, 'systemctl is-active flanneld-lab', {check: false})).stdout.trim() === 'active',
        )
        subnetEnv[n] = (await sshExec(n, 'cat /run/flannel/subnet.env')).stdout
        expect(subnetEnv[n]).toMatch(
          /^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.\d+\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n$/,
        )
      }

      expect(envValue(subnetEnv['lab-n1'], 'FLANNEL_SUBNET')).not.toBe(envValue(subnetEnv['lab-n2'], 'FLANNEL_SUBNET'))

      const leases = (await sshExec('lab-m1', etcdctl('get --prefix /coreos.com/network/subnets/'))).stdout
        .trim()
        .split('\n')
      expect(leases).toHaveLength(4)
      for (const [i, n] of nodes.entries()) {
        const net = envValue(subnetEnv[n], 'FLANNEL_SUBNET')!.replace(/\.1\/24$/, '.0')
        const at = leases.indexOf(`/coreos.com/network/subnets/${net}-24`)
        expect(at, `lease of ${n}`).toBeGreaterThanOrEqual(0)
        const mac = (await sshExec(n, 'cat /sys/class/net/flannel.1/address')).stdout.trim()
        expect(leases[at + 1]).toBe(
          `{"PublicIP":"${NET}.2${i + 1}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
        )
      }

      const log = (await sshExec('lab-n1', 'journalctl -u flanneld-lab --no-pager')).stdout
      expect(log).toContain(`Using interface with name eth0 and address ${NET}.21`)
      expect(log).toContain(`Defaulting external address to interface address (${NET}.21)`)
    })

    it('a ping between the flannel.1 addresses crosses the vxlan', async () => {
      const addr = (n: string) => envValue(subnetEnv[n], 'FLANNEL_SUBNET')!.replace(/\.1\/24$/, '.0')
      const stats = async (n: string) => {
        const r = await sshExec(
          n,
          'cat /sys/class/net/flannel.1/statistics/tx_packets /sys/class/net/flannel.1/statistics/rx_packets',
        )
        const [tx, rx] = r.stdout.trim().split('\n').map(Number)
        return {tx, rx}
      }

      const route = await sshExec('lab-n1', `ip route get ${addr('lab-n2')}`)
      expect(route.stdout).toContain('dev flannel.1')
      const [before1, before2] = [await stats('lab-n1'), await stats('lab-n2')]
      const ping = await sshExec('lab-n1', `ping -c3 -W2 -I ${addr('lab-n1')} ${addr('lab-n2')}`)
      expect(ping.stdout).toContain('3 received')
      const [after1, after2] = [await stats('lab-n1'), await stats('lab-n2')]
      expect(after1.tx - before1.tx).toBeGreaterThanOrEqual(3)
      expect(after2.rx - before2.rx).toBeGreaterThanOrEqual(3)
    })

    it('mk-docker-opts.sh writes docker options from the subnet file', async () => {
      const r = await sshExec(
        'lab-n1',
        `${FLANNEL_DIR}/mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker && cat /run/flannel/docker`,
      )
      const subnet = envValue(subnetEnv['lab-n1'], 'FLANNEL_SUBNET')
      expect(r.stdout).toBe(
        `DOCKER_OPT_BIP="--bip=${subnet}"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1450"\n` +
          `DOCKER_NETWORK_OPTIONS=" --bip=${subnet} --ip-masq=false --mtu=1450"\n`,
      )
    })

    it('shuts down when its lease is revoked, and peers drop its routes', async () => {
      const net = envValue(subnetEnv['lab-n2'], 'FLANNEL_SUBNET')!.replace(/\.1\/24$/, '.0')
      await sshExec('lab-m1', etcdctl(`del /coreos.com/network/subnets/${net}-24`))
      // flanneld 0.26.1 then panics ("close of closed channel", exit 2): the unit ends failed.
      await waitFor(
        'lab-n2 flanneld stopped',
        async () =>
          (await sshExec('lab-n2', 'systemctl is-active flanneld-lab', {check: false})).stdout.trim() !== 'active',
      )
      const log = await sshExec('lab-n2', 'journalctl -u flanneld-lab --no-pager')
      expect(log.stdout).toContain('Lease has been revoked. Shutting down daemon.')
      await waitFor(
        'lab-n1 dropped the route',
        async () => !(await sshExec('lab-n1', 'ip route')).stdout.includes(`${net}/24`),
      )
    })
  })

  it('lab.sh down leaves no process, namespace, link, mount, rule or cgroup behind', async () => {
    const pids = readHosts().map((h) => h.pid)
    const t0 = Date.now()
    await labDown()
    const elapsed = Date.now() - t0
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false)
    expect((await run('ip', ['netns', 'list'])).stdout).not.toMatch(new RegExp(`^kflan${SFX}-lab-`, 'm'))
    expect((await run('ip', ['-o', 'link', 'show'])).stdout).not.toMatch(
      new RegExp(`: (kflanlab${LAB_ID}|kf${SFX || 'l'}-lab-[a-z0-9]+)[@:]`),
    )
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(LAB.dir)
    expect((await run('iptables', ['-w', '-S', 'FORWARD'])).stdout).not.toMatch(
      new RegExp(`--comment "?kflan-lab${SFX}"? `),
    )
    expect(existsSync(`/sys/fs/cgroup/unified/kflan-lab${SFX}/lab-m1`)).toBe(false)
    expect(existsSync(LAB.hostsJson)).toBe(false)
    expect(existsSync(join(LAB.dir, 'hosts'))).toBe(false)
    // And a second down is harmless.
    await labDown()
    expect(elapsed).toBeLessThan(15_000)
  })
})
