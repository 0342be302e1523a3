/**
 * preflight: checks that stop the run (kubeadm style: `[ERROR Name]: message`, downgraded with
 * --ignore-preflight-errors=Name; the rules are in preflight-checks.ts), then the host preparation
 * every guide does by hand: swap off, SELinux permissive, firewalld, br_netfilter, sysctls,
 * hostname and /etc/hosts.
 */
import type {HostPhase, HostRun, RunContext} from '../engine/context.js'

import {hostPorts} from '../cluster/flannel.js'
import {KflanError} from '../errors.js'
import {clockSpread} from '../host/clock.js'
import {readFiles} from '../remote/files.js'
import {shq} from '../remote/shell.js'
import {type FileSpec, withHostsBlock} from '../render/index.js'
import {MODULES_FILE, SYSCTL_FILE} from '../render/paths.js'
import {applyFiles, desiredFiles, prefetchFileStates} from './common.js'
import {isGuard, preflightChecks, preflightHint} from './preflight-checks.js'

/** /etc/fstab with swap entries commented out (pure). */
export function commentOutSwap(fstab: string): string {
  return fstab
    .split('\n')
    .map((line) => (/^\s*[^#\s]+\s+\S+\s+swap\s/.test(line) ? `# ${line} # disabled by kflan` : line))
    .join('\n')
}

/** /etc/selinux/config with SELINUX=disabled (pure). */
export function selinuxDisabled(config: string): string {
  return /^SELINUX=/m.test(config)
    ? config.replace(/^SELINUX=.*$/m, 'SELINUX=disabled')
    : `${config.replace(/\n?$/, '\n')}SELINUX=disabled\n`
}

export const preflightPhase: HostPhase = {
  kind: 'hosts',
  name: 'preflight',
  title: 'preflight checks and host preparation',
  clusterTitle: 'compare the clocks of all hosts',
  hosts: (ctx) => ctx.targets,

  async runHost(ctx, h) {
    const findings = preflightChecks(ctx.cluster, h.host, h.facts)
    const ignored = (n: string) =>
      !isGuard(n) && (ctx.options.ignorePreflight.has('all') || ctx.options.ignorePreflight.has(n.toLowerCase()))
    const errors = findings.filter((f) => f.severity === 'error' && !ignored(f.name))
    for (const f of findings.filter((x) => !errors.includes(x))) ctx.warn(h, `[WARNING ${f.name}]: ${f.message}`)
    if (errors.length > 0) {
      throw new KflanError(
        `preflight checks failed:\n${errors.map((e) => `      [ERROR ${e.name}]: ${e.message}`).join('\n')}`,
        {hint: preflightHint(errors)},
      )
    }

    await prefetchFileStates(ctx, h, ['/etc/hosts', '/etc/fstab', '/etc/selinux/config'])
    await prepareHost(ctx, h)
  },

  async runCluster(ctx) {
    // The same rule as doctor's host.clock-skew: only what the round trips cannot explain counts.
    const k = clockSpread(ctx.hosts.map((h) => ({name: h.host.name, clock: h.facts.clock})))
    if (k && k.certain > ctx.cluster.preflight.maxClockSkew) {
      ctx.warn(
        undefined,
        `[WARNING ClockSkew]: clocks differ by ${k.spread.toFixed(1)} s between ${k.ahead} and ${k.behind} (above ${ctx.cluster.preflight.maxClockSkew} s); etcd and TLS need synchronised clocks`,
      )
    }
  },
}

async function prepareHost(ctx: RunContext, h: HostRun): Promise<void> {
  const f = h.facts
  const c = ctx.cluster
  const wantsSelinux = f.selinux.present && f.selinux.configMode !== undefined && f.selinux.configMode !== 'disabled'
  const current = await readFiles(h.remote, [
    '/etc/hosts',
    '/etc/fstab',
    ...(wantsSelinux ? ['/etc/selinux/config'] : []),
  ])
  const text = (p: string) => current.get(p)?.toString('utf8')

  // Files first, in one batch: the managed /etc/hosts block, fstab without swap, SELinux config,
  // sysctl and modules-load files.
  const edit = (path: string, content: string): FileSpec => ({path, mode: 0o644, content, secret: false, follow: []})
  const files = [edit('/etc/hosts', withHostsBlock(text('/etc/hosts') ?? '', c))]
  const fstab = text('/etc/fstab')
  if (fstab !== undefined && commentOutSwap(fstab) !== fstab) files.push(edit('/etc/fstab', commentOutSwap(fstab)))
  const sel = text('/etc/selinux/config')
  if (sel !== undefined && selinuxDisabled(sel) !== sel) files.push(edit('/etc/selinux/config', selinuxDisabled(sel)))
  files.push(...desiredFiles(ctx, h).filter((x) => x.path === SYSCTL_FILE || x.path === MODULES_FILE))
  const changed = await applyFiles(ctx, h, files)

  if (f.swap.active) await ctx.wet(h, 'swapoff -a', () => h.remote.run('swapoff -a'))
  if (f.selinux.mode === 'enforcing') await ctx.wet(h, 'setenforce 0', () => h.remote.run('setenforce 0'))
  if (f.firewalld.active) {
    if (c.preflight.firewall === 'disable') {
      await ctx.wet(h, 'stop and disable firewalld', () => h.remote.run('systemctl disable --now firewalld'))
    } else {
      const ports = hostPorts(c, h.host)
      const q = ports.map((p) => `firewall-cmd --query-port=${p} >/dev/null || echo ${p}`).join('; ')
      const missing = (await h.remote.run(q)).stdout.split('\n').filter(Boolean)
      if (missing.length > 0) {
        await ctx.wet(h, `open firewalld ports ${missing.join(' ')}`, () =>
          h.remote.run(
            `${missing.map((p) => `firewall-cmd --permanent --add-port=${p} && firewall-cmd --add-port=${p}`).join(' && ')}`,
          ),
        )
      }

      if (h.host.roles.flannel) {
        // Pod traffic is forwarded (docker0 <-> flannel device or the host's interface), and
        // firewalld rejects forwarded traffic its zones do not allow, whatever docker's and
        // flannel's iptables rules accept: the pod network goes to the trusted zone as a source.
        const net = shq(c.flannel.network)
        const has = await h.remote.exec(`firewall-cmd --zone=trusted --query-source=${net}`)
        if (has.code !== 0) {
          await ctx.wet(
            h,
            `allow the pod network ${c.flannel.network} through firewalld (source of zone trusted)`,
            () =>
              h.remote.run(
                `firewall-cmd --permanent --zone=trusted --add-source=${net} && firewall-cmd --zone=trusted --add-source=${net}`,
              ),
          )
        }
      }
    }
  }

  // br_netfilter may be built into the kernel (then /proc/sys/net/bridge exists and modprobe
  // has nothing to load); only a missing sysctl directory after modprobe is an error.
  if (!f.brNetfilter.procDir) {
    await ctx.wet(h, 'modprobe br_netfilter', () =>
      h.remote.run(
        'modprobe br_netfilter 2>/dev/null; test -d /proc/sys/net/bridge || { echo "br_netfilter is not available: /proc/sys/net/bridge is missing" >&2; exit 1; }',
      ),
    )
  }

  const s = f.sysctl
  if (changed.includes(SYSCTL_FILE) || !s.ipForward || !s.bridgeNfCallIptables || s.bridgeNfCallIp6tables === false) {
    await ctx.wet(h, `sysctl -p ${SYSCTL_FILE}`, () => h.remote.run(`sysctl -q -p ${SYSCTL_FILE}`))
  }

  if (f.hostname !== h.host.name) {
    const n = shq(h.host.name)
    await ctx.wet(h, `set hostname ${h.host.name} (was ${f.hostname})`, () =>
      h.remote.run(`hostnamectl set-hostname ${n} 2>/dev/null || { hostname ${n} && echo ${n} > /etc/hostname; }`),
    )
  }
}
