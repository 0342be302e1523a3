/**
 * Issue 11: every inventory value that reaches a rendered file or a remote command line is
 * refused when it holds what its place cannot carry, with file:line:column, the field and a hint.
 */
import {describe, expect, it} from 'vitest'

import {formatDiagnostic} from '../../src/inventory/diagnostics.js'
import {parseInventory} from '../../src/inventory/load.js'
import {notAHost} from '../../src/inventory/validate.js'
import {minimalInventory} from './helpers.js'

function errorsOf(text: string) {
  return parseInventory(text, 'inv.yaml')
    .diagnostics.filter((d) => d.severity === 'error')
    .map((d) => ({...d, text: formatDiagnostic('inv.yaml', d)}))
}

/** The minimal inventory with one more `key: value` line (YAML double-quoted, so escapes work) under a section. */
function withField(section: 'etcd' | 'flannel' | 'ssh', key: string, yamlValue: string): string {
  const base = minimalInventory()
  if (section === 'ssh') return base.replace('hosts:\n', `ssh:\n  ${key}: ${yamlValue}\nhosts:\n`)
  const anchor = section === 'etcd' ? '  tarball: etcd.tgz\n' : '  tarball: flannel.tgz\n'
  return base.replace(anchor, `${anchor}  ${key}: ${yamlValue}\n`)
}

const injections = [
  String.raw`"a\nExecStartPre=/bin/sh -c id"`,
  String.raw`"a\"b"`,
  '"a$b"',
  '"a%b"',
  String.raw`"a\\b"`,
  '"a;b"',
  '"a b"',
  String.raw`"a\u0000b"`,
  '"a\'b"',
]

describe('inventory fields that reach rendered files and command lines', () => {
  const fields: [string, 'etcd' | 'flannel' | 'ssh', string, (v: string) => string][] = [
    ['etcd.dataDir', 'etcd', 'dataDir', (v) => `"/var/lib/${v.slice(1, -1)}"`],
    ['etcd.installDir', 'etcd', 'installDir', (v) => `"/opt/${v.slice(1, -1)}"`],
    ['etcd.token', 'etcd', 'token', (v) => v],
    ['flannel.installDir', 'flannel', 'installDir', (v) => `"/opt/${v.slice(1, -1)}"`],
    ['flannel.subnetFile', 'flannel', 'subnetFile', (v) => `"/run/${v.slice(1, -1)}"`],
    ['flannel.prefix', 'flannel', 'prefix', (v) => `"/coreos.com/${v.slice(1, -1)}"`],
    ['flannel.interface', 'flannel', 'interface', (v) => v],
    ['ssh.user', 'ssh', 'user', (v) => v],
  ]
  for (const [field, section, key, wrap] of fields) {
    it.each(injections)(`refuses ${field} = %s with its position, field and rule`, (v) => {
      const d = errorsOf(withField(section, key, wrap(v)))
      expect(d.map((x) => x.text)).toEqual([
        expect.stringMatching(new RegExp(`^inv\\.yaml:\\d+:\\d+: error: ${field.replace('.', String.raw`\.`)}: must `)),
      ])
    })
  }

  it('accepts the defaults and ordinary values of those fields', () => {
    const ok = minimalInventory()
      .replace(
        '  tarball: etcd.tgz\n',
        '  tarball: etcd.tgz\n  dataDir: /data/etcd-1/default.etcd\n  installDir: /opt/etcd_3.4\n  token: prod-cluster.1\n',
      )
      .replace(
        '  tarball: flannel.tgz\n',
        '  tarball: flannel.tgz\n  prefix: /kflan.io/net-1\n  interface: eth0.100\n  subnetFile: /run/flannel/subnet.env\n',
      )
      .replace('hosts:\n', 'ssh: {user: deploy-user_1}\nhosts:\n')
    expect(errorsOf(ok)).toEqual([])
  })

  it.each(['/', '/opt/', '/opt//etcd', 'opt/etcd', '/opt/../etc', '/opt/.hidden'])('refuses the path %s', (p) => {
    expect(errorsOf(withField('etcd', 'installDir', JSON.stringify(p)))[0]?.text).toMatch(
      /etcd\.installDir: must be an absolute path/,
    )
  })

  it('refuses a flannel network with a newline after the CIDR (it is written into the docker drop-in)', () => {
    const d = errorsOf(
      minimalInventory().replace('network: 10.244.0.0/16', String.raw`network: "10.244.0.0/16\nExecStartPre=/bin/id"`),
    )
    expect(d[0].text).toMatch(/flannel\.network: .* is not an IPv4 CIDR/)
  })

  it('refuses tarball and identity file paths with control characters, and URLs that do not parse', () => {
    expect(
      errorsOf(minimalInventory().replace('tarball: etcd.tgz', String.raw`tarball: "etcd\n.tgz"`))[0].text,
    ).toMatch(/etcd\.tarball: must not contain control characters/)
    expect(errorsOf(withField('ssh', 'identityFile', String.raw`"~/.ssh/id\u0000"`))[0].text).toMatch(
      /ssh\.identityFile: must not contain control characters/,
    )
    const url = minimalInventory().replace(
      'tarball: etcd.tgz',
      `tarball: "https://exa mple.com/e.tgz"\n  sha256: ${'a'.repeat(64)}`,
    )
    expect(errorsOf(url)[0].text).toMatch(/etcd\.tarball: .* is not a valid URL/)
  })
})

describe('addresses that cannot be a host', () => {
  it.each([
    ['0.0.0.0', 'the unspecified address'],
    ['0.1.2.3', '0.0.0.0/8'],
    ['127.0.0.1', 'loopback'],
    ['127.10.0.5', 'loopback'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'the broadcast address'],
  ])('refuses host address %s (%s)', (addr, why) => {
    const d = errorsOf(minimalInventory().replace('10.0.0.21', addr))
    expect(d).toHaveLength(1)
    expect(d[0].text).toMatch(
      new RegExp(
        `^inv\\.yaml:4:\\d+: error: hosts\\[1\\]\\.address: ${addr.replaceAll('.', String.raw`\.`)} cannot be a host's address: it is .*${why.replaceAll('.', String.raw`\.`)}`,
      ),
    )
    expect(d[0].hint).toMatch(/ip -4 addr/)
  })

  it('accepts ordinary private and public addresses', () => {
    for (const a of ['10.0.0.1', '172.16.5.4', '192.168.1.255', '8.8.8.8', '169.254.1.1'])
      expect(notAHost(a)).toBeUndefined()
  })

  it.each([
    ['"203.0.113.10;id"', 'neither an IP address nor a DNS name'],
    ['"bastion example"', 'neither an IP address nor a DNS name'],
    ['"-oProxyCommand=id"', 'neither an IP address nor a DNS name'],
    ['127.0.0.1', 'a loopback address'],
    ['0.0.0.0', 'the unspecified address'],
    ['224.1.1.1', 'a multicast address'],
  ])('refuses bastion address %s', (addr, why) => {
    const d = errorsOf(minimalInventory().replace('hosts:\n', `ssh:\n  bastion: {address: ${addr}}\nhosts:\n`))
    expect(d.map((x) => x.text)).toEqual([
      expect.stringMatching(
        new RegExp(`^inv\\.yaml:3:\\d+: error: ssh\\.bastion\\.address: bastion address .* is ${why}`),
      ),
    ])
  })

  it('checks per-host bastions too, and accepts names and IPv6 addresses', () => {
    const d = errorsOf(
      minimalInventory().replace(
        '{name: n2, address: 10.0.0.22}',
        '{name: n2, address: 10.0.0.22, ssh: {bastion: {address: "a..b"}}}',
      ),
    )
    expect(d[0].text).toMatch(/hosts\[2\]\.ssh\.bastion\.address: bastion address "a\.\.b" is neither/)
    for (const a of ['bastion.example.com', '2001:db8::1', '203.0.113.10']) {
      expect(errorsOf(minimalInventory().replace('hosts:\n', `ssh:\n  bastion: {address: "${a}"}\nhosts:\n`))).toEqual(
        [],
      )
    }
  })
})
