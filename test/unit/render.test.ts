import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {ensureClusterPki, pkiFiles} from '../../src/pki/cluster.js'
import {binaries, networkConfig, renderHost, withHostsBlock} from '../../src/render/index.js'
import {certificateFiles, etcdPaths, flannelPaths} from '../../src/render/paths.js'
import {writeRendered} from '../../src/render/write.js'
import {clusterFrom, exampleCluster, fakePki, minimalInventory, repoRoot} from './helpers.js'

const goldenDir = join(repoRoot, 'test/unit/golden')

function walk(dir: string, base = dir): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  for (const e of readdirSync(dir)) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) for (const [k, v] of walk(p, base)) out.set(k, v)
    else out.set(p.slice(base.length + 1), readFileSync(p))
  }

  return out
}

describe('rendering', () => {
  it.each(['example', 'ha'] as const)('matches the golden files for inventories/%s.yaml', async (name) => {
    const out = mkdtempSync(join(tmpdir(), 'kflan-render-'))
    await writeRendered(exampleCluster(name), out, {pki: fakePki})
    const got = walk(out)
    const dir = join(goldenDir, name)
    if (process.env.UPDATE_GOLDEN) {
      for (const [k, v] of got) {
        mkdirSync(dirname(join(dir, k)), {recursive: true})
        writeFileSync(join(dir, k), v)
      }
    }

    expect(
      existsSync(dir),
      `golden dir ${dir} missing: run UPDATE_GOLDEN=1 npx vitest run test/unit/render.test.ts`,
    ).toBe(true)
    const want = walk(dir)
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort())
    for (const [k, v] of got) expect(v.toString(), k).toBe(want.get(k)!.toString())
  })

  it('renders byte-identical output twice from the same inventory and state directory', async () => {
    const c = exampleCluster('example')
    const state = mkdtempSync(join(tmpdir(), 'kflan-state-'))
    const outs: Map<string, Buffer>[] = []
    for (let i = 0; i < 2; i++) {
      await ensureClusterPki(c, state)
      const out = mkdtempSync(join(tmpdir(), 'kflan-render-'))
      await writeRendered(c, out, {pki: pkiFiles(state)})
      outs.push(walk(out))
    }

    expect(outs[0].size).toBeGreaterThan(30)
    expect(outs[1]).toEqual(outs[0])
    expect(statSync(join(state, 'pki/ca-key.pem')).mode & 0o777).toBe(0o600)
  })

  it('puts etcd files only on members and flannel + docker files only on flannel hosts', () => {
    const c = exampleCluster('example')
    const paths = (n: string) =>
      renderHost(
        c,
        c.hosts.find((h) => h.name === n)!,
        {pki: fakePki},
      ).map((f) => f.path)
    expect(paths('master01')).toContain('/opt/etcd/cfg/etcd.conf')
    expect(paths('master01')).not.toContain('/etc/systemd/system/flanneld.service')
    expect(paths('node01')).toEqual(
      expect.arrayContaining([
        '/opt/etcd/cfg/etcd.conf',
        '/etc/systemd/system/flanneld.service',
        '/etc/systemd/system/docker.service.d/10-kflan-flannel.conf',
      ]),
    )
    const keys = renderHost(c, c.hosts[1], {pki: fakePki}).filter((f) => f.path.endsWith('-key.pem'))
    // server, peer (etcd member) and flanneld's: the kflan admin key stays on the operator's machine.
    expect(keys.map((k) => k.path).sort()).toEqual([
      '/opt/etcd/ssl/peer-key.pem',
      '/opt/etcd/ssl/server-key.pem',
      '/opt/flannel/ssl/flanneld-key.pem',
    ])
    for (const k of keys) expect(k).toMatchObject({mode: 0o600, secret: true})
  })

  it('writes the etcd member list, TLS flags, and --enable-v2 only for flannel < 0.18', () => {
    const c = exampleCluster('example')
    const files = renderHost(c, c.hosts[0], {pki: fakePki})
    const conf = files.find((f) => f.path.endsWith('etcd.conf'))!.content
    expect(conf).toContain(
      'ETCD_INITIAL_CLUSTER="master01=https://192.168.204.171:2380,node01=https://192.168.204.173:2380,node02=https://192.168.204.175:2380"',
    )
    expect(conf).toContain('ETCD_LISTEN_CLIENT_URLS="https://192.168.204.171:2379,https://127.0.0.1:2379"')
    const unit = files.find((f) => f.path.endsWith('etcd.service'))!.content
    expect(unit).toMatch(/--client-cert-auth/)
    expect(unit).toMatch(/--peer-client-cert-auth/)
    expect(unit).not.toMatch(/enable-v2/)
    const old = clusterFrom(minimalInventory().replace('0.26.1', '0.11.0'))
    const oldUnit = renderHost(old, old.hosts[0], {pki: fakePki}).find((f) => f.path.endsWith('etcd.service'))!.content
    expect(oldUnit).toMatch(/--enable-v2/)
  })

  it('builds the docker drop-in from the installed ExecStart and never points mk-docker-opts at the subnet file', () => {
    const c = exampleCluster('example')
    const files = renderHost(c, c.hosts[1], {pki: fakePki, dockerExecStart: '/usr/sbin/dockerd -H fd:// $DOCKER_OPTS'})
    const dropIn = files.find((f) => f.path.includes('docker.service.d'))!.content
    expect(dropIn).toContain('ExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS $DOCKER_NETWORK_OPTIONS')
    expect(dropIn).toContain('EnvironmentFile=-/run/flannel/docker')
    // Bound loosely: a flanneld restart or stop must not take docker and its containers with it.
    expect(dropIn).toMatch(/^Wants=flanneld.service$/m)
    expect(dropIn).toMatch(/^After=flanneld.service$/m)
    expect(dropIn).not.toMatch(/^(Requires|BindsTo|PartOf)=/m)
    // docker waits for flannel's options instead of starting on its default bridge.
    expect(dropIn).toMatch(
      /^ExecStartPre=\/bin\/sh -c 'n=0; until \[ -s \/run\/flannel\/docker \]; do n=\$\$\(\(n\+1\)\);/m,
    )
    const unit = files.find((f) => f.path.endsWith('flanneld.service'))!.content
    expect(unit).toMatch(/mk-docker-opts\.sh -k DOCKER_NETWORK_OPTIONS .* -d \/run\/flannel\/docker$/m)
    expect(unit).not.toMatch(/-d \/run\/flannel\/subnet\.env/)
    // flanneld 0.28 exits 0 when its lease is deleted; on-failure would leave it down.
    expect(unit).toMatch(/^Restart=always$/m)
  })

  it("renders flannel's network config with the backend options", () => {
    const c = exampleCluster('example')
    expect(JSON.parse(networkConfig(c))).toEqual({
      Network: '172.17.0.0/16',
      SubnetLen: 24,
      SubnetMin: '172.17.1.0',
      SubnetMax: '172.17.255.0',
      Backend: {Type: 'vxlan', VNI: 1, Port: 8472},
    })
    const hg = clusterFrom(
      minimalInventory().replace('network: 10.244.0.0/16', 'network: 10.244.0.0/16\n  backend: {type: host-gw}'),
    )
    expect(JSON.parse(networkConfig(hg)).Backend).toEqual({Type: 'host-gw'})
  })

  it('keeps one managed block in /etc/hosts', () => {
    const c = exampleCluster('example')
    const once = withHostsBlock('127.0.0.1 localhost\n', c)
    expect(once).toBe(
      '127.0.0.1 localhost\n# BEGIN kflan hosts\n192.168.204.171 master01\n192.168.204.173 node01\n192.168.204.175 node02\n# END kflan hosts\n',
    )
    expect(withHostsBlock(once, c)).toBe(once)
    const moved = c.hosts.map((h) => ({...h}))
    moved[0].address = '192.168.204.199'
    expect(withHostsBlock(once, {...c, hosts: moved})).toMatch(
      /^127\.0\.0\.1 localhost\n# BEGIN kflan hosts\n192\.168\.204\.199 master01\n/,
    )
  })

  it('lists the binaries each host needs', () => {
    const c = exampleCluster('example')
    expect(binaries(c, c.hosts[0]).map((b) => b.dest)).toEqual(['/opt/etcd/bin/etcd', '/opt/etcd/bin/etcdctl'])
    expect(binaries(c, c.hosts[1]).map((b) => b.dest)).toEqual([
      '/opt/etcd/bin/etcd',
      '/opt/etcd/bin/etcdctl',
      '/opt/flannel/bin/flanneld',
      '/opt/flannel/bin/mk-docker-opts.sh',
    ])
  })

  it('installs exactly the certificate and key files paths.ts names, each from its PKI file, keys 0600', () => {
    const c = exampleCluster('ha')
    for (const h of c.hosts) {
      const files = renderHost(c, h, {pki: fakePki})
      const {certs, keys} = certificateFiles(c, h)
      const pem = files.filter((f) => f.content.startsWith('-----FAKE'))
      expect(pem.map((f) => f.path).sort(), h.name).toEqual([...certs, ...keys].sort())
      for (const f of pem)
        expect([f.mode, f.secret], f.path).toEqual(keys.includes(f.path) ? [0o600, true] : [0o644, false])
      const content = (path: string) => files.find((f) => f.path === path)?.content
      if (h.roles.etcd) {
        const p = etcdPaths(c)
        expect(content(p.serverKey)).toBe(fakePki(`server-${h.name}-key.pem`))
        expect(content(p.peerCert)).toBe(fakePki(`peer-${h.name}.pem`))
        const unit = content(p.unit)!
        for (const f of [p.ca, p.serverCert, p.serverKey, p.peerCert, p.peerKey]) expect(unit).toContain(`=${f} `)
      }

      if (h.roles.flannel) {
        const p = flannelPaths(c)
        expect(content(p.key)).toBe(fakePki('flanneld-key.pem'))
        const unit = content(p.unit)!
        for (const f of [p.ca, p.cert, p.key]) expect(unit).toContain(`=${f} `)
      }
    }
  })
})
