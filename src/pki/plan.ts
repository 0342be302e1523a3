import type {CertSpec, PkiRequest} from './types.js'

/**
 * Which certificates a cluster needs: pure, no keys, no dates, no I/O.
 */
import {PkiError} from './errors.js'
import {type ParsedSan, parseSan, sanSet} from './sans.js'

/** cfssl guides' profiles: expiry 87600h. */
export const DEFAULT_VALIDITY_DAYS = 3650
export const DEFAULT_CA_VALIDITY_DAYS = 3650
export const ORGANIZATION = 'kflan'
export const CA_COMMON_NAME = 'etcd-ca'
/** File base name of the CA in pki/. */
export const CA_NAME = 'ca'
/** File base name (and CN) of flanneld's client certificate. */
export const FLANNEL_CERT_NAME = 'flanneld'
/** Client certificates: flanneld's, and kflan's own for etcdctl. */
export const CLIENT_NAMES = [FLANNEL_CERT_NAME, 'kflan'] as const
/** Every server and peer certificate covers the host itself. */
export const LOCAL_SANS = ['127.0.0.1', '::1', 'localhost'] as const

const FILE_SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/** File base names of a member's certificates. */
export function memberCertNames(member: string): {server: string; peer: string} {
  return {server: `server-${member}`, peer: `peer-${member}`}
}

/**
 * The certificates a PkiRequest calls for: the CA, then per member a server and
 * a peer certificate (in member order), then the client certificates.
 * Throws PkiError for names that cannot be a file name or a SAN.
 */
export function planCertificates(req: PkiRequest): CertSpec[] {
  const cluster = req.cluster.trim()
  if (cluster.length === 0) throw new PkiError('the cluster has no name', 'set a cluster name in the inventory')
  const validityDays = positiveDays(req.validityDays ?? DEFAULT_VALIDITY_DAYS, 'validityDays')
  const caValidityDays = positiveDays(req.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS, 'caValidityDays')

  const base = {organization: ORGANIZATION, organizationalUnit: cluster}
  const specs: CertSpec[] = [
    {
      ...base,
      name: 'ca',
      kind: 'ca',
      commonName: CA_COMMON_NAME,
      dnsNames: [],
      ipAddresses: [],
      extKeyUsage: [],
      validityDays: caValidityDays,
    },
  ]

  const clusterSans = req.extraSans.map((s) => san(s, 'extraSans'))
  const seen = new Set<string>()
  for (const member of req.members) {
    const name = member.name.trim()
    if (!FILE_SAFE.test(name) || parseSan(name) === undefined) {
      throw new PkiError(
        `etcd member name "${member.name}" cannot be used as a hostname and file name`,
        'use letters, digits, dots and dashes, starting with a letter or digit',
      )
    }

    if (seen.has(name.toLowerCase())) {
      throw new PkiError(`etcd member "${name}" appears twice`, 'give every member a unique name')
    }

    seen.add(name.toLowerCase())
    const entries: ParsedSan[] = [
      san(name, `member ${name}`),
      ...member.addresses.map((a) => san(a, `member ${name} addresses`)),
      ...(member.extraSans ?? []).map((a) => san(a, `member ${name} extraSans`)),
      ...LOCAL_SANS.map((a) => san(a, 'local SANs')),
      ...clusterSans,
    ]
    const sans = sanSet(entries)
    const names = memberCertNames(name)
    for (const kind of ['server', 'peer'] as const) {
      specs.push({
        ...base,
        name: names[kind],
        kind,
        commonName: name,
        member: name,
        ...sans,
        extKeyUsage: ['serverAuth', 'clientAuth'],
        validityDays,
      })
    }
  }

  for (const client of CLIENT_NAMES) {
    specs.push({
      ...base,
      name: client,
      kind: 'client',
      commonName: client,
      dnsNames: [],
      ipAddresses: [],
      extKeyUsage: ['clientAuth'],
      validityDays,
    })
  }

  return specs
}

function san(text: string, where: string): ParsedSan {
  const parsed = parseSan(text)
  if (parsed === undefined) {
    throw new PkiError(
      `"${text}" in ${where} is neither an IP address nor a DNS name`,
      'SANs are IPv4/IPv6 addresses (no zone id) or DNS names such as etcd.example.com or *.example.com',
    )
  }

  return parsed
}

function positiveDays(days: number, field: string): number {
  if (!Number.isInteger(days) || days < 1) {
    throw new PkiError(`${field} must be a whole number of days, at least 1 (got ${days})`)
  }

  return days
}
