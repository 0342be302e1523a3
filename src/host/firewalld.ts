/** firewalld: installed, running, and (doctor) what its default zone lets in, the trusted sources. */
import {kv, type Probe} from './probe.js'

export interface Firewalld {
  installed: boolean
  active: boolean
  /** `systemctl is-active`'s word ('' when unknown). */
  state: string
  /** The default zone (`firewall-cmd --list-all`), when read. */
  zone?: {target: string; ports: string[]; services: string[]}
  /** `firewall-cmd --zone=trusted --list-sources`, when read. */
  trustedSources?: string[]
}

/** The probe's output (pure). */
export function parseFirewalld(text: string): Firewalld {
  const r = kv(
    text
      .split('\n')
      .filter((l) => /^(installed|state)=/.test(l))
      .join('\n'),
  )
  const state = r.state ?? ''
  const out: Firewalld = {installed: r.installed === '1', active: state === 'active', state}
  if (!/^zone=1$/m.test(text)) return out
  const field = (k: string) => new RegExp(`^\\s*${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? ''
  const words = (s: string) => s.split(/\s+/).filter(Boolean)
  out.zone = {target: field('target'), ports: words(field('ports')), services: words(field('services'))}
  const trusted = /^@trusted-sources=(.*)$/m.exec(text)
  if (trusted) out.trustedSources = words(trusted[1])
  return out
}

/** Which of `ports` (`2379/tcp`) the default zone opens: by port, a known service, or target ACCEPT (pure). */
export function firewalldOpens(fw: Firewalld, ports: string[]): {port: string; open: boolean}[] {
  if (!fw.zone) return []
  const {target, ports: listed, services} = fw.zone
  const byService: Record<string, string[]> = {'etcd-client': ['2379/tcp'], 'etcd-server': ['2380/tcp']}
  const viaService = new Set(services.flatMap((s) => byService[s] ?? []))
  return ports.map((p) => ({port: p, open: target === 'ACCEPT' || listed.includes(p) || viaService.has(p)}))
}

const INSTALLED =
  'if has firewall-cmd || [ -f /usr/lib/systemd/system/firewalld.service ] || [ -f /lib/systemd/system/firewalld.service ]; then echo installed=1; fi'

/** `zones`: also list the default zone and the trusted sources when running (slow: firewall-cmd). */
export function firewalldProbe(opts: {zones?: boolean} = {}): Probe<Firewalld> {
  const state = 'st=$(unit firewalld.service ActiveState); echo "state=$st"'
  const zones =
    'if [ "$st" = active ]; then echo zone=1; firewall-cmd --list-all; echo "@trusted-sources=$(firewall-cmd --zone=trusted --list-sources 2>/dev/null)"; fi'
  return {
    id: 'firewalld',
    sh: [INSTALLED, state, ...(opts.zones ? [zones] : [])].join('; '),
    background: opts.zones,
    units: ['firewalld.service'],
    parse: (o) => parseFirewalld(o.stdout),
  }
}
