import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {computeSkew} from '../../src/host/clock.js'
import {factsScript, parseFacts} from '../../src/host/facts.js'
import {interfaceWithAddress, parseIpAddr, parseSs} from '../../src/host/net.js'
import {splitSections} from '../../src/host/probe.js'
import {parseOsRelease} from '../../src/host/system.js'
import {parseExecStart, parseSystemctlShow} from '../../src/host/units.js'

/** Captured from a lab host (Debian 12 systemd-nspawn container with docker.io) by the e2e test (KFLAN_CAPTURE_FACTS). */
const DEBIAN = `
@@kflan:clock@@
1795347888.726341933

@@kflan:os-release@@
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"

@@kflan:uname@@
x86_64
6.18.44-fc-v669

@@kflan:hostname@@
lab-m1

@@kflan:systemd@@
running=1
systemd 252 (252.39-1~deb12u2)

@@kflan:swaps@@
Filename				Type		Size		Used		Priority

@@kflan:selinux@@

@@kflan:firewalld@@
state=inactive

@@kflan:sysctl@@
net/ipv4/ip_forward=1
net/bridge/bridge-nf-call-iptables=1
net/bridge/bridge-nf-call-ip6tables=1

@@kflan:br_netfilter@@
procdir=1
sysctl=1

@@kflan:docker@@
dockerd=/usr/sbin/dockerd
Docker version 20.10.24+dfsg1, build 5d6db84

@@kflan:units@@
Id=docker.service
ExecStart={ path=/usr/sbin/dockerd ; argv[]=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS ; ignore_errors=no ; start_time=[Sun 2026-11-22 11:44:36 UTC] ; stop_time=[n/a] ; pid=51 ; code=(null) ; status=0/0 }
LoadState=loaded
ActiveState=active
SubState=running
FragmentPath=/lib/systemd/system/docker.service
DropInPaths=
UnitFileState=enabled

Id=etcd.service
LoadState=not-found
ActiveState=inactive
SubState=dead
FragmentPath=
UnitFileState=

Id=flanneld.service
LoadState=not-found
ActiveState=inactive
SubState=dead
FragmentPath=
UnitFileState=

@@kflan:etcd-data@@

@@kflan:listen@@
tcp LISTEN 0      128      0.0.0.0:22    0.0.0.0:*
tcp LISTEN 0      4096   127.0.0.1:39431 0.0.0.0:*
tcp LISTEN 0      128         [::]:22       [::]:*

@@kflan:ip@@
[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"link_index":138,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"4a:65:cc:d0:25:81","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{"family":"inet","local":"10.211.0.11","prefixlen":24,"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::4865:ccff:fed0:2581","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":3,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1500,"qdisc":"noqueue","operstate":"DOWN","group":"default","link_type":"ether","address":"02:42:c5:5a:d7:f2","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,"broadcast":"172.17.255.255","scope":"global","label":"docker0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]

@@kflan:iptables-filter@@
-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT

@@kflan:iptables-filter--err@@

@@kflan:iptables-filter--rc@@
0

@@kflan:tools@@
sha256sum=1
base64=1
tar=1
ss=1
ip=1
iptables=1
modprobe=1
sysctl=1
systemctl=1
curl=1

@@kflan:end@@
`

/** Written by hand after CentOS 7: old iproute2 without JSON, SELinux, firewalld, swap, a running etcd. */
const CENTOS7 = `
@@kflan:clock@@
1795349041.000000000

@@kflan:os-release@@
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"

@@kflan:uname@@
x86_64
3.10.0-1160.el7.x86_64

@@kflan:hostname@@
node-2.example.lan

@@kflan:systemd@@
running=1
systemd 219

@@kflan:swaps@@
Filename				Type		Size	Used	Priority
/dev/dm-1                               partition	2097148	1024	-2
/swapfile                               file		1048572	0	-3

@@kflan:selinux@@
getenforce=Enforcing
enforce=1
SELINUX=enforcing

@@kflan:firewalld@@
installed=1
state=active

@@kflan:sysctl@@
net/ipv4/ip_forward=0

@@kflan:br_netfilter@@

@@kflan:docker@@
dockerd=/usr/bin/dockerd
Docker version 19.03.15, build 99e3ed8919

@@kflan:units@@
Id=docker.service
ExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock ; ignore_errors=no ; start_time=[Mon 2024-01-01 10:00:00 UTC] ; stop_time=[n/a] ; pid=1234 ; code=(null) ; status=0/0 }
LoadState=loaded
ActiveState=active
SubState=running
FragmentPath=/usr/lib/systemd/system/docker.service
UnitFileState=enabled
DropInPaths=/etc/systemd/system/docker.service.d/http-proxy.conf /etc/systemd/system/docker.service.d/kflan.conf

Id=etcd.service
LoadState=loaded
ActiveState=active
SubState=running
FragmentPath=/etc/systemd/system/etcd.service
UnitFileState=enabled

Id=flanneld.service
LoadState=loaded
ActiveState=failed
SubState=failed
FragmentPath=/etc/systemd/system/flanneld.service
UnitFileState=enabled

@@kflan:etcd-data@@
exists=1
member=1
nonempty=1

@@kflan:listen@@
udp    UNCONN     0      0         *:8472                  *:*
tcp    LISTEN     0      128    192.168.56.12:2379                  *:*
tcp    LISTEN     0      128    127.0.0.1:2379                  *:*
tcp    LISTEN     0      128    192.168.56.12:2380                  *:*
tcp    LISTEN     0      128       *:22                    *:*
tcp    LISTEN     0      128    [::]:22                 [::]:*

@@kflan:ip@@
#text
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global noprefixroute dynamic eth0\\       valid_lft 86000sec preferred_lft 86000sec
3: eth1    inet 192.168.56.12/24 brd 192.168.56.255 scope global noprefixroute eth1\\       valid_lft forever preferred_lft forever
3: eth1    inet6 fe80::a00:27ff:fe4e:66a1/64 scope link \\       valid_lft forever preferred_lft forever
5: flannel.1    inet 10.5.72.0/32 scope global flannel.1\\       valid_lft forever preferred_lft forever

@@kflan:iptables-filter@@
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT

@@kflan:iptables-filter--err@@

@@kflan:iptables-filter--rc@@
0

@@kflan:tools@@
sha256sum=1
base64=1
tar=1
ss=1
ip=1
iptables=1
modprobe=1
sysctl=1
systemctl=1
curl=1

@@kflan:end@@
`

const at = (s: string) => Number(s) * 1000

describe('facts parsing', () => {
  it('Debian lab host', () => {
    const f = parseFacts(DEBIAN, {
      etcdDataDir: '/var/lib/etcd',
      localSendMs: at('1795347888.614'),
      localRecvMs: at('1795347888.814'),
    })
    expect(f.warnings).toEqual([])
    expect(f.hostname).toBe('lab-m1')
    expect(f.os).toEqual({
      id: 'debian',
      idLike: [],
      versionId: '12',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      family: 'debian',
    })
    expect(f.arch).toBe('x86_64')
    expect(f.systemd).toEqual({present: true, running: true, version: 252})
    expect(f.swap).toEqual({active: false, devices: []})
    expect(f.selinux).toEqual({present: false, mode: undefined, configMode: undefined})
    expect(f.firewalld).toEqual({installed: false, active: false, state: 'inactive'})
    expect(f.sysctl).toEqual({ipForward: true, bridgeNfCallIptables: true, bridgeNfCallIp6tables: true})
    expect(f.brNetfilter.loaded).toBe(true)
    expect(f.docker).toMatchObject({
      installed: true,
      dockerdPath: '/usr/sbin/dockerd',
      version: '20.10.24+dfsg1',
      execStart: '/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS',
    })
    expect(f.docker.unit).toMatchObject({
      exists: true,
      active: true,
      fragmentPath: '/lib/systemd/system/docker.service',
      dropInPaths: [],
    })
    expect(f.etcd).toMatchObject({
      exists: false,
      nonEmpty: false,
      hasMember: false,
      unit: {exists: false, active: false, loadState: 'not-found'},
    })
    expect(f.flanneld.unit.exists).toBe(false)
    expect(f.ports).toEqual({tcp2379: false, tcp2380: false, udp8472: false})
    expect(interfaceWithAddress(f.interfaces, '10.211.0.11')?.name).toBe('eth0')
    expect(f.interfaces.find((i) => i.name === 'eth0')).toMatchObject({
      mtu: 1500,
      state: 'UP',
      mac: '4a:65:cc:d0:25:81',
    })
    expect(f.iptables).toEqual({present: true, forwardPolicy: 'DROP'})
    expect(f.clock.skewMs).toBe(12)
    expect(f.clock.uncertaintyMs).toBe(100)
    expect(f.tools.sha256sum).toBe(true)
  })

  it('CentOS 7 style host', () => {
    const f = parseFacts(CENTOS7, {
      etcdDataDir: '/var/lib/etcd',
      localSendMs: at('1795349043.000'),
      localRecvMs: at('1795349043.010'),
    })
    expect(f.warnings).toEqual([])
    expect(f.os).toMatchObject({id: 'centos', idLike: ['rhel', 'fedora'], versionId: '7', family: 'rhel'})
    expect(f.kernel).toBe('3.10.0-1160.el7.x86_64')
    expect(f.systemd).toEqual({present: true, running: true, version: 219})
    expect(f.swap.active).toBe(true)
    expect(f.swap.devices).toEqual([
      {path: '/dev/dm-1', type: 'partition', sizeKb: 2_097_148, usedKb: 1024},
      {path: '/swapfile', type: 'file', sizeKb: 1_048_572, usedKb: 0},
    ])
    expect(f.selinux).toEqual({present: true, mode: 'enforcing', configMode: 'enforcing'})
    expect(f.firewalld).toEqual({installed: true, active: true, state: 'active'})
    expect(f.sysctl).toEqual({ipForward: false, bridgeNfCallIptables: undefined, bridgeNfCallIp6tables: undefined})
    expect(f.brNetfilter).toEqual({loaded: false, procDir: false, module: false})
    expect(f.docker.execStart).toBe('/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock')
    expect(f.docker.unit.dropInPaths).toEqual([
      '/etc/systemd/system/docker.service.d/http-proxy.conf',
      '/etc/systemd/system/docker.service.d/kflan.conf',
    ])
    expect(f.etcd).toMatchObject({exists: true, nonEmpty: true, hasMember: true, unit: {exists: true, active: true}})
    expect(f.flanneld.unit).toMatchObject({exists: true, active: false, activeState: 'failed'})
    expect(f.ports).toEqual({tcp2379: true, tcp2380: true, udp8472: true})
    expect(interfaceWithAddress(f.interfaces, '192.168.56.12')?.name).toBe('eth1')
    expect(f.interfaces.map((i) => i.name)).toEqual(['lo', 'eth0', 'eth1', 'flannel.1'])
    expect(f.interfaces.find((i) => i.name === 'flannel.1')?.addresses).toEqual([
      {family: 'inet', address: '10.5.72.0', prefixLen: 32, scope: 'global'},
    ])
    expect(f.iptables.forwardPolicy).toBe('ACCEPT')
    expect(f.clock.skewMs).toBe(-2005)
  })

  it('tolerates missing tools and an incomplete output', () => {
    const out = DEBIAN.replace(/@@kflan:listen@@\n[^@]*/, '@@kflan:listen@@\n#no-ss\n\n')
      .replace(/@@kflan:iptables-filter@@\n[^@]*/, '@@kflan:iptables-filter@@\n#missing\n\n')
      .replace('@@kflan:end@@', '')
    const f = parseFacts(out, {etcdDataDir: '/d', localSendMs: 0, localRecvMs: 0})
    expect(f.iptables).toEqual({present: false})
    expect(f.listening).toEqual([])
    expect(f.warnings).toEqual([
      'facts output is incomplete (no end marker)',
      'ss is not installed: listening ports unknown',
    ])
  })

  it('SELinux disabled or permissive', () => {
    const base = (sel: string) => CENTOS7.replace(/@@kflan:selinux@@\n[^@]*/, `@@kflan:selinux@@\n${sel}\n\n`)
    const mode = (sel: string) => parseFacts(base(sel), {etcdDataDir: '/d', localSendMs: 0, localRecvMs: 0}).selinux
    expect(mode('getenforce=Disabled\nSELINUX=disabled')).toEqual({
      present: true,
      mode: 'disabled',
      configMode: 'disabled',
    })
    expect(mode('enforce=0\nSELINUX=enforcing')).toEqual({present: true, mode: 'permissive', configMode: 'enforcing'})
    expect(mode('SELINUX=permissive')).toEqual({present: true, mode: 'disabled', configMode: 'permissive'})
  })
})

describe('facts helpers', () => {
  it('os families', () => {
    expect(parseOsRelease('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"').family).toBe('debian')
    expect(parseOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"').family).toBe('rhel')
    expect(parseOsRelease('ID=fedora').family).toBe('rhel')
    expect(parseOsRelease('ID=arch').family).toBe('other')
    expect(parseOsRelease('').family).toBe('other')
  })

  it('ss, ip -o, systemctl show, ExecStart', () => {
    expect(
      parseSs('tcp LISTEN 0 4096 10.211.0.11%eth0:2380 0.0.0.0:*\nudp UNCONN 0 0 [::]:8472 [::]:*\ngarbage'),
    ).toEqual([
      {proto: 'tcp', address: '10.211.0.11', port: 2380},
      {proto: 'udp', address: '::', port: 8472},
    ])
    expect(parseIpAddr('2: veth1@if5    inet 10.1.0.2/24 scope global veth1')).toEqual([
      {name: 'veth1', addresses: [{family: 'inet', address: '10.1.0.2', prefixLen: 24, scope: 'global'}]},
    ])
    expect(parseIpAddr('[not json')).toEqual([])
    expect(parseSystemctlShow('A=1\nB=x=y\n\nA=2\n')).toEqual([{A: '1', B: 'x=y'}, {A: '2'}])
    expect(parseExecStart('{ path=/x ; argv[]=/x -a ; ignore_errors=no }')).toBe('/x -a')
    expect(parseExecStart('')).toBeUndefined()
  })

  it('clock skew from the round trip', () => {
    expect(computeSkew('1000.5', 1_000_000, 1_000_200)).toEqual({remoteMs: 1_000_500, skewMs: 400, uncertaintyMs: 100})
  })

  it('the script runs under dash/sh and yields every section on this machine', () => {
    const out = execFileSync('sh', ['-s'], {input: factsScript({etcdDataDir: "/nonexistent/it's"}), encoding: 'utf8'})
    const sections = [...splitSections(out).keys()]
    expect(sections).toEqual([
      'clock',
      'os-release',
      'uname',
      'hostname',
      'systemd',
      'swaps',
      'selinux',
      'firewalld',
      'sysctl',
      'br_netfilter',
      'docker',
      'units',
      'etcd-data',
      'listen',
      'ip',
      'tools',
      'iptables-filter',
      'iptables-filter--err',
      'iptables-filter--rc',
      'end',
    ])
    const f = parseFacts(out, {etcdDataDir: '/x', localSendMs: Date.now(), localRecvMs: Date.now()})
    expect(f.arch).toBe(execFileSync('uname', ['-m'], {encoding: 'utf8'}).trim())
    expect(Math.abs(f.clock.skewMs)).toBeLessThan(5000)
  })
})
