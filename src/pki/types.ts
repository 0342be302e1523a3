/**
 * The narrow interface between the inventory layer and the PKI.
 *
 * The inventory maps its Cluster to a PkiRequest; everything in src/pki works
 * from that alone.
 */

export type KeyAlgorithm = 'ecdsa' | 'rsa'

export type CertKind = 'ca' | 'server' | 'peer' | 'client'

export type ExtKeyUsageName = 'serverAuth' | 'clientAuth'

export interface PkiMember {
  /** The member's hostname: used in file names (server-<name>.pem), as CN and as a DNS SAN. */
  name: string
  /** Addresses the member is reached at: IPs or DNS names (detected), all become SANs. */
  addresses: string[]
  /** Extra SANs for this member only (a NAT address, a per-host alias). */
  extraSans?: string[]
}

export interface PkiRequest {
  /** Cluster name, written as OU in every subject. */
  cluster: string
  /** Key algorithm of newly generated keys: ECDSA P-256 (cfssl's default) or RSA 2048. */
  keyAlgorithm: KeyAlgorithm
  /** The etcd members: each gets a server and a peer certificate. */
  members: PkiMember[]
  /** SANs added to every server and peer certificate (a VIP, a load balancer name). */
  extraSans: string[]
  /** Validity of leaf certificates in days; default 3650 (cfssl's 87600h). */
  validityDays?: number
  /** Validity of a newly created CA in days; default 3650. */
  caValidityDays?: number
}

/** One certificate kflan wants, as planned from a PkiRequest (no keys, no dates). */
export interface CertSpec {
  /** File base name in pki/: `<name>.pem` and `<name>-key.pem`. */
  name: string
  kind: CertKind
  commonName: string
  organization: string
  organizationalUnit: string
  /** The member this certificate belongs to (server and peer certificates). */
  member?: string
  /** DNS SANs, lower-cased, sorted, unique. */
  dnsNames: string[]
  /** IP SANs in canonical form (IPv6 compressed, lower case), sorted, unique. */
  ipAddresses: string[]
  /** Extended key usages; empty for the CA. */
  extKeyUsage: ExtKeyUsageName[]
  /** Validity requested for a newly issued certificate. */
  validityDays: number
}

export type CertAction = 'issued' | 'reused' | 'reissued'

export interface CertOutcome {
  name: string
  kind: CertKind
  commonName: string
  member?: string
  action: CertAction
  /** Why: "new", "SANs changed: +10.0.0.5 -10.0.0.4", "expires in 12 days", "valid for 3649 days", ... */
  reason: string
  certFile: string
  keyFile: string
  notAfter: Date
  /** Lower-case hex serial number. */
  serial: string
}

/** What ensurePki did. Never contains key material, so it may be printed or serialised. */
export interface PkiReport {
  /** The pki/ directory. */
  dir: string
  /** The CA first, then the planned certificates in plan order. */
  certificates: CertOutcome[]
  /** True when any file was written. */
  changed: boolean
  /** Certificates in pki/ that the plan no longer contains (left in place). */
  orphans: string[]
  /** Things the user should know but that did not stop the run (CA expiring, permissions fixed). */
  warnings: string[]
}

export interface EnsureOptions {
  /** The time to evaluate and issue at (tests inject it). */
  now?: Date
  /** Re-issue certificates expiring within this many days; default 30. */
  renewBeforeDays?: number
}

/** A certificate read back: what `kflan certs check` and `kflan doctor` show. */
export interface CertDescription {
  /** "CN=etcd1, O=kflan, OU=prod". */
  subject: string
  commonName: string
  issuer: string
  /** Lower-case hex. */
  serial: string
  dnsNames: string[]
  ipAddresses: string[]
  /** "DNS:etcd1", "IP:10.0.0.1" in certificate order. */
  sans: string[]
  /** EKU names (serverAuth, clientAuth, ...; unknown ones as their OID). */
  usages: string[]
  isCA: boolean
  keyAlgorithm: KeyAlgorithm | 'other'
  notBefore: Date
  notAfter: Date
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number
  /** Signed by the given CA (self-signed for the CA itself); null when no CA was given. */
  chainsToCa: boolean | null
}

export interface CertFileDescription extends CertDescription {
  /** Base name: "ca", "server-etcd1", ... */
  name: string
  certFile: string
  keyFile: string
  /** null when the key file is absent. */
  keyMatches: boolean | null
}
