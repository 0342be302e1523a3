/**
 * src/host: every probe's parser on real output captured from lab hosts (test/unit/fixtures/host,
 * a lab of 3 masters + 2 nodes after `kflan init`: Debian 12 systemd-nspawn hosts, etcd 3.5.35,
 * flanneld 0.26.1, docker.io 20.10), plus the forms other hosts print (old iproute2, CentOS 7)
 * written after their documentation; and the composed script's shape.
 */
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'

import {clockProbe, clockSpread, computeSkew} from '../../src/host/clock.js'
import {parseDaemonJson, parseVendorExecStart} from '../../src/host/docker.js'
import {etcdSetting, parseEtcdProcess} from '../../src/host/etcd.js'
import {parseFacts} from '../../src/host/facts.js'
import {fileContentsProbe, parseFileContents} from '../../src/host/files.js'
import {firewalldOpens, parseFirewalld} from '../../src/host/firewalld.js'
import {parseHttpGet} from '../../src/host/http.js'
import {chainPolicy, parseIptablesOut} from '../../src/host/iptables.js'
import {parseBrNetfilter, parseSelinux, parseSwaps, parseSysctl} from '../../src/host/kernel.js'
import {docker0Of, parseIpAddr, parseRoutes, parseSs, parseVxlan} from '../../src/host/net.js'
import {commandProbe, parseProbes, probeScript, splitSections} from '../../src/host/probe.js'
import {hostnameProbe} from '../../src/host/system.js'
import {parseUnits, unitsProbe} from '../../src/host/units.js'
import {parseResetFacts} from '../../src/reset/facts.js'
import {clusterFrom} from './helpers.js'

const fixture = (name: string) => readFileSync(new URL(`fixtures/host/${name}.txt`, import.meta.url), 'utf8')
const section = (out: string, name: string) => splitSections(out).get(name) ?? ''
const FACTS_M1 = fixture('lab-facts-m1')
const FACTS_N1 = fixture('lab-facts-n1')
const DOCTOR_M1 = fixture('lab-doctor-m1')
const DOCTOR_N1 = fixture('lab-doctor-n1')
const RESET_N1 = fixture('lab-reset-n1')

describe('probe scripts', () => {
  it('one systemctl show for every unit, background probes started first and collected at the end', () => {
    const s = probeScript([
      unitsProbe(['etcd.service']),
      commandProbe('slow', 'sleep 0'),
      {...hostnameProbe, units: ['docker.service']},
    ])
    expect(s.match(/systemctl show/g)).toHaveLength(1)
    expect(s).toContain('systemctl show etcd.service docker.service -p Id')
    expect(s.indexOf("j slow 'sleep 0'")).toBeLessThan(s.indexOf('s hostname;'))
    expect(s.indexOf('s hostname;')).toBeLessThan(s.indexOf('wait'))
  })

  it('a lone foreground probe needs no temporary directory', () => {
    expect(probeScript([clockProbe])).not.toContain('mktemp')
    expect(() => probeScript([clockProbe, clockProbe])).toThrow(/repeated/)
  })

  it('runs under sh: foreground sections, and a background one with stdout, stderr and exit code', () => {
    const out = execFileSync('sh', ['-s'], {
      input: probeScript([hostnameProbe, commandProbe('bg', 'echo out; echo err >&2; exit 3')]),
      encoding: 'utf8',
    })
    const r = parseProbes({h: hostnameProbe, bg: commandProbe('bg', '')}, out, {sendMs: 0, recvMs: 0})
    expect(r.complete).toBe(true)
    expect(r.h).toBe(execFileSync('hostname', {encoding: 'utf8'}).trim())
    expect(r.bg).toEqual({stdout: 'out', stderr: 'err', rc: 3})
    expect(parseProbes({bg: commandProbe('bg', '')}, '', {sendMs: 0, recvMs: 0})).toMatchObject({
      bg: undefined,
      complete: false,
    })
  })
})

describe('host facts from a lab master and node', () => {
  it('an etcd member', () => {
    const f = parseFacts(FACTS_M1, {etcdDataDir: '/var/lib/etcd/default.etcd', localSendMs: 0, localRecvMs: 0})
    expect(f.hostname).toBe('lab-m1')
    expect(f.etcd).toMatchObject({exists: true, nonEmpty: true, hasMember: true, unit: {exists: true, active: true}})
    expect(f.etcd.unit.mainPid).toBe(384)
    expect(f.ports).toEqual({tcp2379: true, tcp2380: true, udp8472: false})
    expect(f.listening.find((l) => l.port === 2380)).toEqual({
      proto: 'tcp',
      address: '10.211.2.11',
      port: 2380,
      processes: [{name: 'etcd', pid: 384}],
    })
    expect(f.flanneld.unit).toMatchObject({exists: false, loadState: 'not-found'})
  })

  it('a flannel node', () => {
    const f = parseFacts(FACTS_N1, {etcdDataDir: '/var/lib/etcd/default.etcd', localSendMs: 0, localRecvMs: 0})
    expect(f.warnings).toEqual([])
    expect(f.firewalld).toEqual({installed: true, active: false, state: 'inactive'})
    expect(f.docker.unit).toMatchObject({
      activeState: 'active',
      mainPid: 490,
      unitFileState: 'enabled',
      dropInPaths: ['/etc/systemd/system/docker.service.d/10-kflan-flannel.conf'],
    })
    expect(f.docker.execStart).toMatch(/\$DOCKER_NETWORK_OPTIONS$/)
    expect(f.flanneld.unit).toMatchObject({active: true, mainPid: 367})
    expect(f.iptables).toEqual({present: true, forwardPolicy: 'ACCEPT'})
    expect(docker0Of(f.interfaces)).toEqual({address: '10.244.43.1', prefixLen: 24, mtu: 1450, cidr: '10.244.43.1/24'})
  })
})

describe('parsers', () => {
  it('units: every asked unit, unknown ones as not existing', () => {
    const u = parseUnits(section(FACTS_N1, 'units'), ['flanneld.service', 'etcd.service', 'nope.service'])
    expect(u['flanneld.service']).toMatchObject({loadState: 'loaded', activeState: 'active', subState: 'running'})
    expect(u['flanneld.service'].execStart).toMatch(/^\/opt\/flannel\/bin\/flanneld --etcd-endpoints=/)
    expect(u['etcd.service']).toMatchObject({loadState: 'not-found', exists: false, active: false, mainPid: undefined})
    expect(u['nope.service']).toMatchObject({loadState: '', exists: false, dropInPaths: []})
  })

  it('swap, SELinux, sysctls, br_netfilter', () => {
    expect(parseSwaps(section(FACTS_N1, 'swaps'))).toEqual({active: false, devices: []})
    expect(parseSwaps('Filename Type Size Used Priority\n/swapfile file 8188 12 -2\n').devices).toEqual([
      {path: '/swapfile', type: 'file', sizeKb: 8188, usedKb: 12},
    ])
    expect(parseSelinux(section(FACTS_N1, 'selinux'))).toEqual({present: false})
    expect(parseSelinux('getenforce=Permissive\nSELINUX=enforcing')).toEqual({
      present: true,
      mode: 'permissive',
      configMode: 'enforcing',
    })
    expect(parseSysctl(section(FACTS_N1, 'sysctl'))).toEqual({
      ipForward: true,
      bridgeNfCallIptables: true,
      bridgeNfCallIp6tables: true,
    })
    expect(parseSysctl('net/ipv4/ip_forward=0')).toEqual({ipForward: false})
    expect(parseBrNetfilter(section(FACTS_N1, 'br_netfilter'))).toEqual({loaded: true, procDir: true, module: false})
    expect(parseBrNetfilter('')).toEqual({loaded: false, procDir: false, module: false})
  })

  it('interfaces: ip -j, and the text forms of iproute2 without JSON (MTU from ip -o link)', () => {
    const ifs = parseIpAddr(section(FACTS_N1, 'ip'))
    expect(ifs.map((i) => i.name)).toEqual(['lo', 'eth0', 'docker0', 'flannel.1'])
    const text = parseIpAddr(
      [
        '#text',
        String.raw`3: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1450 qdisc noqueue state DOWN mode DEFAULT group default \    link/ether 02:42:bf:52:e1:4b brd ff:ff:ff:ff:ff:ff`,
        String.raw`2: eth0@if829: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 42:cf:97:19:44:22`,
        String.raw`3: docker0    inet 10.244.43.1/24 brd 10.244.43.255 scope global docker0\       valid_lft forever preferred_lft forever`,
        String.raw`2: eth0    inet 10.211.2.21/24 brd 10.211.2.255 scope global eth0\       valid_lft forever preferred_lft forever`,
      ].join('\n'),
    )
    expect(text).toEqual([
      {
        name: 'docker0',
        mtu: 1450,
        state: 'DOWN',
        addresses: [{family: 'inet', address: '10.244.43.1', prefixLen: 24, scope: 'global'}],
      },
      {
        name: 'eth0',
        mtu: 1500,
        state: 'UP',
        addresses: [{family: 'inet', address: '10.211.2.21', prefixLen: 24, scope: 'global'}],
      },
    ])
    expect(docker0Of(text)?.cidr).toBe('10.244.43.1/24')
    expect(docker0Of([])).toBeUndefined()
    expect(docker0Of([{name: 'docker0', addresses: []}])).toEqual({
      address: undefined,
      prefixLen: undefined,
      mtu: undefined,
      cidr: undefined,
    })
  })

  it('routes, the vxlan device, listening sockets', () => {
    expect(parseRoutes(section(RESET_N1, 'routes'))).toEqual([
      {dst: 'default', gateway: '10.211.2.1', dev: 'eth0', flags: []},
      {dst: '10.211.2.0/24', gateway: undefined, dev: 'eth0', flags: []},
      {dst: '10.244.27.0/24', gateway: '10.244.27.0', dev: 'flannel.1', flags: ['onlink']},
      {dst: '10.244.43.0/24', gateway: undefined, dev: 'docker0', flags: ['linkdown']},
    ])
    expect(parseRoutes('#text\n10.244.5.0/24 via 10.244.5.0 dev flannel.1 onlink\n')).toEqual([
      {dst: '10.244.5.0/24', gateway: '10.244.5.0', dev: 'flannel.1', flags: ['onlink']},
    ])
    expect(parseVxlan(section(DOCTOR_N1, 'vxlan'))).toEqual({
      name: 'flannel.1',
      mtu: 1450,
      up: true,
      kind: 'vxlan',
      vni: 1,
      local: '10.211.2.21',
      port: 8472,
    })
    expect(parseVxlan('')).toBeUndefined()
    expect(parseSs(section(FACTS_N1, 'listen')).map((s) => `${s.proto}/${s.port}`)).toEqual([
      'udp/8472',
      'tcp/33633',
      'tcp/22',
      'tcp/8471',
      'tcp/22',
    ])
  })

  it('iptables: rules, policy, errors, a missing iptables', () => {
    const run = {stdout: section(FACTS_N1, 'iptables-filter'), stderr: '', rc: 0}
    const t = parseIptablesOut(run)!
    expect(t.error).toBeUndefined()
    expect(chainPolicy(t.rules, 'FORWARD')).toBe('ACCEPT')
    expect(t.rules).toContain('-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT')
    expect(parseIptablesOut({stdout: '#missing', stderr: '', rc: 0})).toBeUndefined()
    expect(
      parseIptablesOut({stdout: '', stderr: "iptables v1.8.9 (nf_tables): table `nat' does not exist", rc: 1}),
    ).toEqual({rules: [], error: "iptables v1.8.9 (nf_tables): table `nat' does not exist"})
    // splitRule: test/unit/reset.test.ts
  })

  it('firewalld: the init form and the doctor form (zone, trusted sources)', () => {
    expect(parseFirewalld(section(DOCTOR_N1, 'firewalld'))).toEqual({installed: true, active: false, state: 'inactive'})
    const fw = parseFirewalld(
      'installed=1\nstate=active\nzone=1\npublic (active)\n  target: default\n  services: ssh etcd-server\n  ports: 8472/udp 2379/tcp\n@trusted-sources=\n',
    )
    expect(fw.trustedSources).toEqual([])
    expect(firewalldOpens(fw, ['2379/tcp', '2380/tcp', '8472/udp', '8285/udp']).map((p) => p.open)).toEqual([
      true,
      true,
      true,
      false,
    ])
    expect(firewalldOpens(parseFirewalld('state=active\nzone=1\n  target: ACCEPT\n'), ['2380/tcp'])[0].open).toBe(true)
    expect(firewalldOpens(parseFirewalld('state=inactive\n'), ['2380/tcp'])).toEqual([])
  })

  it('etcd: the running member and its settings', () => {
    const p = parseEtcdProcess(section(DOCTOR_M1, 'etcd-proc'))!
    expect(p.args[0]).toBe('/opt/etcd/bin/etcd')
    expect(etcdSetting(p, 'client-cert-auth')).toBe('true')
    expect(etcdSetting(p, 'listen-client-urls')).toBe('https://10.211.2.11:2379,https://127.0.0.1:2379')
    expect(etcdSetting(p, 'quota-backend-bytes')).toBeUndefined()
    expect(
      etcdSetting(
        {args: ['etcd', '--quota-backend-bytes', '10', '--quota-backend-bytes=20'], env: {}},
        'quota-backend-bytes',
      ),
    ).toBe('20')
    expect(parseEtcdProcess('')).toBeUndefined()
  })

  it('docker: the vendor ExecStart, daemon.json; HTTP; file contents', () => {
    expect(parseVendorExecStart(section(DOCTOR_N1, 'docker-vendor'))).toBe(
      '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS',
    )
    expect(parseDaemonJson('')).toEqual({bip: false, pools: false})
    expect(parseDaemonJson('{"bip": "10.1.0.1/24"}')).toEqual({bip: true, pools: false})
    expect(parseDaemonJson('{"default-address-pools": [ broken')).toEqual({bip: false, pools: true})
    expect(parseHttpGet(section(DOCTOR_N1, 'http-healthz'), 'u')).toEqual({
      url: 'u',
      code: 200,
      body: 'flanneld is running',
    })
    expect(parseHttpGet('curl: (7) Failed to connect\n@code=000', 'u')).toEqual({
      url: 'u',
      code: undefined,
      body: 'curl: (7) Failed to connect',
    })
    expect(parseHttpGet('#no-curl', 'u')).toBe('no-curl')
    const files = parseFileContents('\n@@f:0@@\npresent\na\nb\n\n\n@@f:1@@\nabsent\n@@f:2@@\npresent', [
      '/a',
      '/b',
      '/c',
    ])
    expect(files).toEqual({'/a': 'a\nb', '/b': undefined, '/c': ''})
    const out = execFileSync('sh', ['-s'], {
      input: probeScript([fileContentsProbe(['/etc/hostname', "/no/such'file"])]),
      encoding: 'utf8',
    })
    expect(Object.keys(parseFileContents(section(out, 'files'), ['/etc/hostname', "/no/such'file"]))).toHaveLength(2)
  })

  it('clocks: skew from the round trip; the spread counts only what the round trips cannot explain', () => {
    expect(computeSkew('1000.5', 1_000_000, 1_000_200)).toEqual({remoteMs: 1_000_500, skewMs: 400, uncertaintyMs: 100})
    const k = (skewMs: number, uncertaintyMs: number) => ({remoteMs: 0, skewMs, uncertaintyMs})
    expect(
      clockSpread([
        {name: 'a', clock: k(0, 200)},
        {name: 'b', clock: k(1500, 200)},
        {name: 'c', clock: k(Number.NaN, Number.NaN)},
      ]),
    ).toEqual({spread: 1.5, certain: 1.1, ahead: 'b', behind: 'a'})
    expect(clockSpread([{name: 'a', clock: k(0, 1)}])).toBeUndefined()
  })
})

describe('reset facts from a lab node', () => {
  it('kflan files, runtime files, wants, routes', () => {
    const c = clusterFrom(`cluster: lab
hosts:
  - {name: lab-m1, address: 10.211.2.11}
  - {name: lab-n1, address: 10.211.2.21}
roles: {masters: [lab-m1], nodes: [lab-n1]}
etcd: {version: 3.5.35, tarball: etcd.tgz}
flannel: {version: 0.26.1, tarball: flannel.tgz, network: 10.244.0.0/16}
`)
    const r = parseResetFacts(c, RESET_N1)
    expect(r.stateDir).toBe(true)
    expect(r.files.get('/etc/hosts')).toMatchObject({exists: true, managed: false, hasBackup: true})
    expect(r.files.get('/opt/flannel/ssl/flanneld-key.pem')).toMatchObject({managed: true, mode: 0o600})
    expect(r.runFiles).toEqual(['/run/flannel/subnet.env', '/run/flannel/docker'])
    expect(r.wants).toEqual(['/etc/systemd/system/multi-user.target.wants/flanneld.service'])
    expect(r.resetDropIn).toBe(false)
    expect(r.dockerDaemonJson).toEqual({bip: false, pools: false})
    expect(r.iptables?.nat).toContain(
      '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    )
    expect(r.routes).toHaveLength(4)
    expect(() => parseResetFacts(c, RESET_N1.replace('@@kflan:end@@', ''))).toThrow(/incomplete/)
  })
})
