/**
 * Subject alternative names: tell IPs from DNS names, bring both to one
 * canonical spelling (so the SANs planned and the SANs read back from a
 * certificate compare as strings), and describe the difference.
 */
import {isIP} from 'node:net'

export interface SanSet {
  dnsNames: string[]
  ipAddresses: string[]
}

export type ParsedSan = {type: 'ip'; value: string} | {type: 'dns'; value: string}

const DNS_LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/

/**
 * Canonical text of an IP address: IPv4 dotted quad, IPv6 compressed and lower
 * case (RFC 5952, as the WHATWG URL parser writes it). Undefined if `text` is
 * not an IP address (zone ids such as fe80::1%eth0 are not: a SAN has none).
 */
export function canonicalIp(text: string): string | undefined {
  let s = text.trim()
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1)
  const family = isIP(s)
  if (family === 4) return new URL(`http://${s}/`).hostname
  if (family === 6 && !s.includes('%')) {
    const v6 = new URL(`http://[${s}]/`).hostname.slice(1, -1)
    // An IPv4-mapped address is the IPv4 address (as Go, and so cfssl, encodes it).
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6)
    if (mapped) {
      const [hi, lo] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)]
      return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.')
    }

    return v6
  }

  return undefined
}

/** Canonical DNS name (lower case, no trailing dot), or undefined if `text` is not a valid one. A leading `*.` is allowed. */
export function canonicalDnsName(text: string): string | undefined {
  let s = text.trim().toLowerCase()
  if (s.endsWith('.')) s = s.slice(0, -1)
  if (s.length === 0 || s.length > 253) return undefined
  const labels = s.split('.')
  if (labels[0] === '*' && labels.length > 1) labels.shift()
  return labels.every((l) => DNS_LABEL.test(l)) ? s : undefined
}

/** An IP or a DNS name, detected; undefined if it is neither. */
export function parseSan(text: string): ParsedSan | undefined {
  const ip = canonicalIp(text)
  if (ip !== undefined) return {type: 'ip', value: ip}
  const dns = canonicalDnsName(text)
  if (dns !== undefined) return {type: 'dns', value: dns}
  return undefined
}

/** Sorted, unique SAN set from canonical entries. IPs sort numerically-ish (v4 before v6). */
export function sanSet(entries: ParsedSan[]): SanSet {
  const dns = new Set<string>()
  const ips = new Set<string>()
  for (const e of entries) (e.type === 'ip' ? ips : dns).add(e.value)
  return {dnsNames: [...dns].sort(), ipAddresses: [...ips].sort(compareIps)}
}

function compareIps(a: string, b: string): number {
  const fa = isIP(a)
  const fb = isIP(b)
  if (fa !== fb) return fa - fb
  if (fa === 4) {
    const na = a.split('.').map(Number)
    const nb = b.split('.').map(Number)
    for (let i = 0; i < 4; i++) if (na[i] !== nb[i]) return na[i]! - nb[i]!
    return 0
  }

  return a < b ? -1 : a > b ? 1 : 0
}

/** The SANs in `want` but not `have` (added) and in `have` but not `want` (removed), as plain strings. */
export function diffSans(have: SanSet, want: SanSet): {added: string[]; removed: string[]} {
  const h = new Set([...have.dnsNames, ...have.ipAddresses])
  const w = new Set([...want.dnsNames, ...want.ipAddresses])
  return {
    added: [...w].filter((x) => !h.has(x)),
    removed: [...h].filter((x) => !w.has(x)),
  }
}

/**
 * Parse node:crypto's X509Certificate.subjectAltName text
 * ("DNS:a, IP Address:10.0.0.1", values JSON-quoted when they contain
 * separators) into canonical entries. Other name types are ignored.
 */
export function parseSubjectAltNameText(text: string | undefined): ParsedSan[] {
  if (!text) return []
  const out: ParsedSan[] = []
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g
  for (const m of text.matchAll(re)) {
    const kind = m[1]!
    let value = m[2]!
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string
      } catch {
        continue
      }
    }

    if (kind === 'DNS') out.push({type: 'dns', value: canonicalDnsName(value) ?? value.toLowerCase()})
    else if (kind === 'IP Address') out.push({type: 'ip', value: canonicalIp(value) ?? value})
  }

  return out
}
