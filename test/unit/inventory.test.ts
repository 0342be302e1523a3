import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {formatDiagnostic} from '../../src/inventory/diagnostics.js'
import {parseInventory} from '../../src/inventory/load.js'
import {compareVersions} from '../../src/inventory/model.js'
import {parseCidr} from '../../src/inventory/net.js'
import {clusterFrom, exampleCluster, minimalInventory} from './helpers.js'

function problems(text: string) {
  const r = parseInventory(text, 'inv.yaml')
  return r.diagnostics.map((d) => ({...d, text: formatDiagnostic('inv.yaml', d)}))
}

function errorsOf(text: string) {
  return problems(text).filter((d) => d.severity === 'error')
}

describe('inventory loading', () => {
  it("resolves the guides' topology: etcd on all three, flannel + docker on the nodes", () => {
    const c = exampleCluster('example')
    const roles = Object.fromEntries(c.hosts.map((h) => [h.name, h.roles]))
    expect(roles.master01).toEqual({master: true, node: false, etcd: true, flannel: false})
    expect(roles.node01).toEqual({master: false, node: true, etcd: true, flannel: true})
    expect(roles.node02).toEqual({master: false, node: true, etcd: true, flannel: true})
    expect(c.flannel).toMatchObject({
      subnetLen: 24,
      subnetMin: '172.17.1.0',
      subnetMax: '172.17.255.0',
      etcdApi: 'v3',
      prefix: '/coreos.com/network',
    })
    expect(c.etcd).toMatchObject({dataDir: '/var/lib/etcd/default.etcd', installDir: '/opt/etcd', enableV2: false})
  })

  it('defaults etcd to the masters and flannel to the nodes; per-host ssh overrides the defaults', () => {
    const c = exampleCluster('ha')
    expect(c.hosts.filter((h) => h.roles.etcd).map((h) => h.name)).toEqual(['master1', 'master2', 'master3'])
    expect(c.hosts.filter((h) => h.roles.flannel).map((h) => h.name)).toEqual(['node1', 'node2', 'node3'])
    expect(c.hosts[0].ssh).toMatchObject({
      user: 'ops',
      port: 22,
      sudoPasswordEnv: 'KFLAN_SUDO_PASSWORD',
      bastion: {address: '203.0.113.10', user: 'jump', port: 22},
    })
    const o = clusterFrom(
      minimalInventory().replace(
        '{name: n2, address: 10.0.0.22}',
        '{name: n2, address: 10.0.0.22, ssh: {port: 2222, user: admin}}',
      ),
    )
    expect(o.hosts[2].ssh).toMatchObject({port: 2222, user: 'admin'})
    expect(o.hosts[1].ssh).toMatchObject({port: 22, user: 'root'})
  })

  it('resolves relative tarball paths against the inventory directory', () => {
    const c = clusterFrom(minimalInventory(), '/srv/inv/cluster.yaml')
    expect(c.etcd.tarball).toBe('/srv/inv/etcd.tgz')
  })

  it('reports YAML syntax errors with their position', () => {
    const d = errorsOf('cluster: t\nhosts: [\n  - a: b\n')
    expect(d.length).toBeGreaterThan(0)
    expect(d[0].text).toMatch(/^inv\.yaml:\d+:\d+: error: YAML syntax/)
  })

  it('reports every problem at once, each with line, column, field and hint', () => {
    const text = `cluster: t
ssh: {usr: root}
hosts:
  - {name: m1, address: 10.0.0.11}
  - {name: m1, address: 10.0.0.11}
  - {name: n1, address: 10.0.0.300}
roles:
  masters: [m1]
  nodes: [n9]
etcd: {version: 3.4.23, tarball: e.tgz}
flannel: {version: 0.26.1, tarball: f.tgz, network: 10.244.0.0/16, backend: {type: vxlam}}
`
    const d = errorsOf(text)
    const by = (field: string) => d.find((x) => x.text.includes(` ${field}:`))
    expect(by('ssh.usr')?.message).toBe('unknown field "usr"; did you mean "user"?')
    expect(by('ssh.usr')).toMatchObject({line: 2, column: 7})
    expect(by('hosts[1].name')?.message).toMatch(/duplicate host name "m1"/)
    expect(by('hosts[1].address')?.message).toMatch(/duplicate address 10\.0\.0\.11/)
    expect(by('hosts[2].address')).toMatchObject({line: 6, message: '"10.0.0.300" is not an IPv4 address'})
    expect(by('roles.nodes[0]')?.message).toMatch(/unknown host "n9"; did you mean "n1"\?/)
    expect(by('flannel.backend.type')).toMatchObject({
      message: 'unknown backend type',
      hint: 'use one of: vxlan, host-gw, udp',
    })
    expect(d).toHaveLength(6)
  })

  it('reports missing required fields', () => {
    const d = errorsOf('cluster: t\nhosts:\n  - {name: a}\nroles: {masters: [a]}\n')
    expect(d.map((x) => x.text)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/hosts\[0\]\.address: required field is missing/),
        expect.stringMatching(/etcd: required field is missing/),
        expect.stringMatching(/flannel: required field is missing/),
      ]),
    )
  })

  it.each([
    ['subnetLen: 16', /subnetLen \/16 must be longer than the network's \/16/],
    ['subnetLen: 30', /longer than \/28/],
    ['subnetLen: 17', /only 1 subnet of \/17/],
    ['subnetMin: 10.245.0.0', /10\.245\.0\.0 is outside the network/],
    ['subnetMin: 10.244.9.0\n  subnetMax: 10.244.2.0', /subnetMin 10\.244\.9\.0 is above subnetMax 10\.244\.2\.0/],
    ['subnetMin: 10.244.1.7', /not on a \/24 boundary/],
  ])('checks flannel subnet arithmetic: %s', (extra, message) => {
    const text = minimalInventory().replace('network: 10.244.0.0/16', `network: 10.244.0.0/16\n  ${extra}`)
    expect(
      errorsOf(text)
        .map((d) => d.message)
        .join('\n'),
    ).toMatch(message)
  })

  it('rejects an invalid network CIDR and one overlapping a host address', () => {
    expect(errorsOf(minimalInventory().replace('10.244.0.0/16', '10.244.0.1/16'))[0].message).toMatch(
      /host bits set; did you mean 10\.244\.0\.0\/16/,
    )
    const overlap = errorsOf(minimalInventory().replace('10.244.0.0/16', '10.0.0.0/16'))
    expect(overlap.map((d) => d.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/host address 10\.0\.0\.11 lies inside the pod network/)]),
    )
  })

  it('requires an etcd member and warns about an even count', () => {
    expect(errorsOf(minimalInventory().replace('masters: [m1]', 'masters: []'))[0].message).toBe('no etcd member')
    const even = problems(minimalInventory().replace('masters: [m1]', 'masters: [m1]\n  etcd: [m1, n1]'))
    expect(even.filter((d) => d.severity === 'error')).toEqual([])
    expect(even.find((d) => d.severity === 'warning')?.message).toMatch(
      /2 etcd members tolerate no more failures than 1/,
    )
  })

  it('rejects flannel older than 0.18 (etcd v2 API) with etcd 3.6, and enables v2 on older etcd', () => {
    const v36 = minimalInventory().replace('3.4.23', '3.6.1').replace('0.26.1', '0.10.0')
    expect(errorsOf(v36)[0].message).toMatch(
      /flannel 0\.10\.0 reads its config through the etcd v2 API, which etcd 3\.6\.1 no longer serves/,
    )
    const c = clusterFrom(minimalInventory().replace('0.26.1', 'v0.17.0'))
    expect(c.flannel).toMatchObject({version: '0.17.0', etcdApi: 'v2'})
    expect(c.etcd.enableV2).toBe(true)
  })

  it('parses networks as four decimal parts with a prefix, nothing looser', () => {
    expect(parseCidr('10.244.0.0/16')).toEqual({base: 0x0a_f4_00_00, prefix: 16})
    for (const bad of [
      '10.244/16',
      '10.244.0.0',
      '0x0a.244.0.0/16',
      '010.244.0.0/16',
      '10.244.0.0/33',
      '10.244.0.0/-1',
      '::1/128',
    ]) {
      expect(typeof parseCidr(bad), bad).toBe('string')
    }

    expect(parseCidr('10.244.7.0/16')).toBe('"10.244.7.0/16" has host bits set; did you mean 10.244.0.0/16?')
  })

  it('reads versions as users write them (v prefix, pre-releases) and orders them as semver', () => {
    const c = clusterFrom(minimalInventory().replace('3.4.23', 'v3.6.0-rc.1').replace('0.26.1', '"v0.26.1"'))
    expect(c.etcd.version).toBe('3.6.0-rc.1')
    expect(c.flannel.version).toBe('0.26.1')
    expect(errorsOf(minimalInventory().replace('3.4.23', 'latest'))[0].text).toMatch(
      /etcd\.version: must be a release version like 3\.4\.23/,
    )
    expect(errorsOf(minimalInventory().replace('3.4.23', '3.4'))[0].text).toMatch(/etcd\.version/)
    expect(compareVersions('3.6.0-rc.1', '3.6.0')).toBeLessThan(0)
    expect(compareVersions('3.10.0', '3.9.9')).toBeGreaterThan(0)
    expect(compareVersions('0.17.0', '0.18.0')).toBeLessThan(0)
  })

  it('refuses a backend MTU that the flannel version ignores, at its line', () => {
    const inv = (v: string) =>
      minimalInventory()
        .replace('version: 0.26.1', `version: ${v}`)
        .replace('network: 10.244.0.0/16', 'network: 10.244.0.0/16\n  backend: {type: vxlan, mtu: 1400}')
    const [e] = errorsOf(inv('0.17.0'))
    expect(e.message).toMatch(/^flannel 0\.17\.0 ignores the backend's MTU \(flannel reads it from 0\.21\.3 on\)/)
    expect(e.text).toMatch(/^inv\.yaml:\d+:\d+: .*flannel\.backend\.mtu/)
    expect(errorsOf(inv('0.21.3'))).toEqual([])
  })

  it('reads timeouts as durations with their unit, defaults for the ones not given', () => {
    expect(clusterFrom(minimalInventory()).timeouts).toEqual({
      etcdStart: 60_000,
      flannelStart: 45_000,
      dockerStart: 120_000,
      doctorHost: 20_000,
      etcdRequest: 5000,
    })
    const c = clusterFrom(
      minimalInventory('timeouts: {dockerStart: 5m, doctorHost: 1m30s, etcdStart: 200s, etcdRequest: 30s}\n'),
    )
    expect(c.timeouts).toEqual({
      etcdStart: 200_000,
      flannelStart: 45_000,
      dockerStart: 300_000,
      doctorHost: 90_000,
      etcdRequest: 30_000,
    })
  })

  it('refuses a timeout without its unit, out of range, or unknown, at its line', () => {
    const text = minimalInventory(
      'timeouts:\n  dockerStart: 300\n  doctorHost: 2h\n  flannelStart: 0s\n  etcdStrat: 60s\n',
    )
    const d = errorsOf(text).map((e) => e.text)
    expect(d).toEqual([
      expect.stringMatching(
        /^inv\.yaml:17:16: error: timeouts\.dockerStart: must be a duration from 1s to 60m with its unit, like 90s, 5m or 1m30s \(got 300\)/,
      ),
      expect.stringMatching(/^inv\.yaml:18:15: error: timeouts\.doctorHost: must be a duration .*\(got "2h"\)/),
      expect.stringMatching(/^inv\.yaml:19:17: error: timeouts\.flannelStart: must be a duration .*\(got "0s"\)/),
      expect.stringMatching(
        /^inv\.yaml:20:3: error: timeouts\.etcdStrat: unknown field "etcdStrat"; did you mean "etcdStart"\?/,
      ),
    ])
  })

  it('requires a sha256 for a tarball URL', () => {
    const d = errorsOf(minimalInventory().replace('tarball: etcd.tgz', 'tarball: https://example.invalid/etcd.tgz'))
    expect(d[0].text).toMatch(/etcd\.sha256: a tarball fetched from a URL needs its sha256/)
  })

  it('takes a digest made only of digits as the text written, leading zeros and all', () => {
    const digits = '0' + '1234567890'.repeat(6) + '123'
    const withE = '12e4' + '5'.repeat(60)
    const c = clusterFrom(
      minimalInventory()
        .replace('tarball: etcd.tgz', `tarball: https://example.invalid/etcd.tgz\n  sha256: ${digits}  # unquoted`)
        .replace('tarball: flannel.tgz', `tarball: flannel.tgz\n  sha256: ${withE}`),
    )
    expect(c.etcd.sha256).toBe(digits)
    expect(c.flannel.sha256).toBe(withE)
    // Upper case is the same digest.
    const upper = clusterFrom(
      minimalInventory().replace('tarball: etcd.tgz', `tarball: etcd.tgz\n  sha256: ${'AB'.repeat(32)}`),
    )
    expect(upper.etcd.sha256).toBe('ab'.repeat(32))
    // A number that is not 64 digits is reported as the text written, with the field's position.
    const short = errorsOf(minimalInventory().replace('tarball: etcd.tgz', 'tarball: etcd.tgz\n  sha256: 0012'))
    expect(short.map((d) => d.text)).toEqual([
      expect.stringMatching(/^inv\.yaml:12:11: error: etcd\.sha256: must be the 64 hex digits `sha256sum` prints/),
    ])
  })

  it('reports missing local files as warnings or errors, as the command asks, with position and hint', () => {
    const text = minimalInventory().replace('cluster: t', 'cluster: t\nssh: {identityFile: /nonexistent/id_ed25519}')
    expect(parseInventory(text, '/nonexistent/inv.yaml').diagnostics).toEqual([])
    const warned = parseInventory(text, '/nonexistent/inv.yaml', {checkFiles: 'warning'})
    expect(warned.cluster).toBeDefined()
    const lines = warned.diagnostics.map((d) => formatDiagnostic('inv.yaml', d))
    expect(lines).toEqual([
      expect.stringMatching(
        /^inv\.yaml:2:21: warning: ssh\.identityFile: identity file not found: \/nonexistent\/id_ed25519\n {4}hint: .*kflan init and join refuse to start without it/,
      ),
      expect.stringMatching(
        /^inv\.yaml:12:12: warning: etcd\.tarball: file not found: \/nonexistent\/etcd\.tgz\n {4}hint: relative paths/,
      ),
      expect.stringMatching(/^inv\.yaml:15:12: warning: flannel\.tarball: file not found: \/nonexistent\/flannel\.tgz/),
    ])
    const refused = parseInventory(text, '/nonexistent/inv.yaml', {checkFiles: 'error'})
    expect(refused.cluster).toBeUndefined()
    expect(refused.diagnostics.map((d) => [d.severity, d.line])).toEqual([
      ['error', 2],
      ['error', 12],
      ['error', 15],
    ])
    // A URL is not a local file.
    const url = text.replace(
      'tarball: etcd.tgz',
      `tarball: https://example.invalid/etcd.tgz\n  sha256: ${'a'.repeat(64)}`,
    )
    expect(
      parseInventory(url, '/nonexistent/inv.yaml', {checkFiles: 'error'}).diagnostics.map((d) => d.path.join('.')),
    ).toEqual(['ssh.identityFile', 'flannel.tarball'])
  })

  it('every inventory under inventories/ validates as shipped: its missing tarballs and key are only warnings', () => {
    const dir = fileURLToPath(new URL('../../inventories', import.meta.url))
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) {
      const r = parseInventory(readFileSync(join(dir, f), 'utf8'), join(dir, f), {checkFiles: 'warning'})
      expect(
        r.diagnostics.filter((d) => d.severity === 'error'),
        f,
      ).toEqual([])
      expect(r.cluster, f).toBeDefined()
    }
  })

  it('accepts the seed topology and the HA example without problems', () => {
    for (const c of [exampleCluster('example'), exampleCluster('ha')]) expect(c.hosts.length).toBeGreaterThan(2)
  })
})
