/**
 * SSH and host preparation (pure): reachability and host key, swap, SELinux, firewalld, iptables
 * INPUT rules against kflan's ports, br_netfilter, bridge-nf-call-iptables, ip_forward, the
 * FORWARD chain, and clock skew between hosts.
 */
import type {Cluster, Host} from '../inventory/model.js'

import {hostPorts as neededPorts} from '../cluster/flannel.js'
import {blockingInputRules, forwardVerdict} from '../cluster/iptables.js'
import {clockSpread} from '../host/clock.js'
import {type CheckResult, type DoctorInput, type HostData, listing, resultFor, withData} from './types.js'

export function sshChecks(input: DoctorInput): CheckResult[] {
  return input.hosts.map((s) => {
    const r = resultFor('ssh.reachable', s.host.name)
    const t = s.host.ssh
    const where = `${t.user}@${s.host.address}:${t.port}`
    if (!s.connected) {
      const e = s.error ?? {kind: 'error', message: 'not connected'}
      const what =
        e.kind === 'hostkey' ? 'host key refused' : e.kind === 'auth' ? 'authentication failed' : 'unreachable'
      const msg = e.message.startsWith(`${s.host.name}: `) ? e.message.slice(s.host.name.length + 2) : e.message
      return r.fail(`${what}: ${msg}`, e.hint)
    }

    if (s.gatherError)
      return r.fail(
        `connected to ${where}, but the checks script failed: ${s.gatherError}`,
        `run \`sh -x\` on the host by hand; the command log in the state directory has the script`,
      )
    const k = s.hostKey
    return r.ok(
      `${where}, host key ${k ? `${k.keyType} ${k.fingerprint} (${k.action === 'known' ? 'as recorded' : k.action === 'pinned' ? 'matches the inventory' : k.action})` : 'verified'}`,
    )
  })
}

export function hostChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  const out: CheckResult[] = []
  for (const s of withData(input)) out.push(...hostPrep(c, s.host, s.data))
  out.push(...clockSkew(input))
  return out
}

export function hostPrep(c: Cluster, h: Host, d: HostData): CheckResult[] {
  const out: CheckResult[] = []
  const r = (id: string) => resultFor(id, h.name)

  const swap = r('host.swap')
  out.push(
    d.swap.devices.length === 0
      ? swap.ok('swap is off')
      : swap.fail(
          `swap is on: ${d.swap.devices.map((x) => `${x.path} (${x.type}, ${Math.round(x.sizeKb / 1024)} MiB)`).join(', ')}`,
          'run `swapoff -a` and comment out the swap lines in /etc/fstab (`kflan init` does both)',
        ),
  )

  const se = r('host.selinux')
  out.push(
    d.selinux.mode === 'enforcing'
      ? se.fail(
          'SELinux is enforcing',
          'run `setenforce 0` and set SELINUX=disabled (or permissive) in /etc/selinux/config (`kflan init` does both)',
        )
      : se.ok(d.selinux.mode ? `SELinux is ${d.selinux.mode}` : 'no SELinux'),
  )

  const fw = r('host.firewalld')
  if (d.firewalld.state === 'active') {
    const closed = d.firewalld.ports.filter((p) => !p.open).map((p) => p.port)
    const ts = d.firewalld.trustedSources
    if (h.roles.flannel && ts && !ts.includes(c.flannel.network)) {
      out.push(
        fw.fail(
          `firewalld is running and its trusted zone lacks the pod network ${c.flannel.network}: forwarded pod traffic is rejected${closed.length > 0 ? `; it does not allow ${listing(closed)} either` : ''}`,
          `\`firewall-cmd --permanent --zone=trusted --add-source=${c.flannel.network} && firewall-cmd --reload\`, or stop firewalld; \`kflan init\` does it per preflight.firewall`,
        ),
      )
    } else
      out.push(
        closed.length === 0
          ? fw.ok(
              `firewalld is running and allows ${listing(d.firewalld.ports.map((p) => p.port)) || 'what this host needs'}`,
            )
          : fw.fail(
              `firewalld is running and does not allow ${listing(closed)}`,
              `open them (\`${closed.map((p) => `firewall-cmd --permanent --add-port=${p}`).join(' && ')} && firewall-cmd --reload\`), or stop firewalld; \`kflan init\` does it per preflight.firewall`,
            ),
      )
  } else {
    out.push(
      fw.ok(
        `firewalld is not running${d.firewalld.state && d.firewalld.state !== 'inactive' ? ` (${d.firewalld.state})` : ''}`,
      ),
    )
  }

  if (d.iptables && !d.iptables.error) {
    const ports = neededPorts(c, h)
    const blocked = blockingInputRules(d.iptables.rules, ports)
    const ipr = r('host.iptables-input')
    out.push(
      blocked.length === 0
        ? ipr.ok(`no iptables INPUT rule drops ${listing(ports) || "kflan's ports"}`)
        : ipr.fail(
            `iptables drops ${listing([...new Set(blocked.map((b) => b.port))])}: ${blocked.map((b) => b.rule).join('; ')}`,
            `delete the rule (\`iptables ${blocked[0].rule.replace(/^-A /, '-D ')}\`) and from wherever it is loaded at boot`,
          ),
    )
  }

  const br = r('host.br-netfilter')
  out.push(
    d.brNetfilter.procDir
      ? br.ok('br_netfilter is loaded (/proc/sys/net/bridge exists)')
      : br.fail(
          'br_netfilter is not loaded: /proc/sys/net/bridge is missing (flanneld 0.26+ exits without it)',
          'run `modprobe br_netfilter` and list it in /etc/modules-load.d/ (`kflan init` does both)',
        ),
  )
  if (d.brNetfilter.procDir) {
    const nf = r('host.bridge-nf-call-iptables')
    out.push(
      d.sysctl.bridgeNfCallIptables
        ? nf.ok('net.bridge.bridge-nf-call-iptables = 1')
        : nf.fail(
            `net.bridge.bridge-nf-call-iptables = ${sysctlValue(d.sysctl.bridgeNfCallIptables)}`,
            'run `sysctl -w net.bridge.bridge-nf-call-iptables=1` and keep it in /etc/sysctl.d/ (`kflan init` writes /etc/sysctl.d/99-kflan.conf)',
          ),
    )
  }

  const fwd = r('host.ip-forward')
  out.push(
    d.sysctl.ipForward
      ? fwd.ok('net.ipv4.ip_forward = 1')
      : fwd.fail(
          `net.ipv4.ip_forward = ${sysctlValue(d.sysctl.ipForward)}: the host does not route pod traffic`,
          'run `sysctl -w net.ipv4.ip_forward=1` and keep it in /etc/sysctl.d/ (`kflan init` writes /etc/sysctl.d/99-kflan.conf)',
        ),
  )

  if (h.roles.flannel) {
    const ch = r('host.forward-chain')
    if (!d.iptables) out.push(ch.fail('iptables is not installed', 'install iptables: flanneld and docker need it'))
    else if (d.iptables.error)
      out.push(ch.warn(`cannot read the FORWARD chain: ${d.iptables.error}`, 'run `iptables -S FORWARD` on the host'))
    else {
      const v = forwardVerdict(d.iptables.rules, c.flannel.network)
      if (!v.ok) {
        out.push(
          ch.fail(
            `the FORWARD chain drops pod traffic: policy ${v.policy ?? '?'} and no ACCEPT for ${c.flannel.network} in both directions`,
            `add \`iptables -I FORWARD -s ${c.flannel.network} -j ACCEPT\` and \`-d ${c.flannel.network}\` (flanneld's FLANNEL-FWD or kflan's docker drop-in do this; docker >= 1.13 sets the policy to DROP)`,
          ),
        )
      } else if (v.policy === 'ACCEPT' && v.via.length === 0) out.push(ch.ok('FORWARD policy ACCEPT'))
      else
        out.push(
          ch.ok(
            `FORWARD policy ${v.policy}, pod traffic accepted by ${v.via
              .map((x) => x.split(':')[0])
              .filter((x, i, a) => a.indexOf(x) === i)
              .join(', ')} rules for ${c.flannel.network}`,
          ),
        )
    }
  }

  return out
}

export function clockSkew(input: DoctorInput): CheckResult[] {
  const readings = withData(input).flatMap((s) => (s.data.clock ? [{name: s.host.name, clock: s.data.clock}] : []))
  const k = clockSpread(readings)
  if (!k) return []
  const limit = input.cluster.preflight.maxClockSkew
  const r = resultFor('host.clock-skew')
  if (k.certain > limit) {
    return [
      r.warn(
        `clocks differ by ${k.spread.toFixed(2)} s between ${k.ahead} (ahead) and ${k.behind} (above preflight.maxClockSkew ${limit} s)`,
        'run NTP (chrony or systemd-timesyncd) on every host: etcd leases and TLS validity need synchronised clocks',
      ),
    ]
  }

  return [r.ok(`clocks of ${readings.length} hosts within ${k.spread.toFixed(2)} s (limit ${limit} s)`)]
}

/** A sysctl as read: 1, 0 (not 1), or missing. */
const sysctlValue = (v: boolean | undefined) => (v === undefined ? '(missing)' : v ? '1' : '0')
