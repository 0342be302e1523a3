/**
 * The certificates of one host (pure): present and readable, expiry, SANs, usages, chain and key.
 * Moved whole from doctor/certs.ts, which keeps the file list, the CA comparison across hosts and
 * calls this per host.
 */
import {posix} from 'node:path'

import type {Cluster, Host} from '../inventory/model.js'

import {WARN_DAYS} from '../pki/check.js'
import {
  certCoversAddress,
  type CertDescription,
  type CertSpec,
  describeCertificate,
  keyMatchesCert,
  memberCertNames,
  verifyChain,
} from '../pki/index.js'
import {etcdPaths} from '../render/paths.js'
import {caFingerprint, certFiles} from './certs.js'
import {type CheckResult, type HostData, listing, plural, resultFor} from './types.js'

export function hostCerts(
  c: Cluster,
  h: Host,
  d: HostData,
  plan: CertSpec[],
  now: Date,
  ca?: {fingerprint: string; from: string},
): CheckResult[] {
  const r = (id: string) => resultFor(id, h.name)
  const files = certFiles(c, h)
  const out: CheckResult[] = []

  const missing: string[] = []
  const unreadable: string[] = []
  const parsed = new Map<string, CertDescription>()
  for (const f of files) {
    const pem = d.files[f.path]
    if (pem === undefined) {
      missing.push(f.path)
      continue
    }

    try {
      parsed.set(f.path, describeCertificate(pem, {now}))
    } catch {
      unreadable.push(f.path)
    }

    if (f.keyPath && d.files[f.keyPath] === undefined) missing.push(f.keyPath)
  }

  const fr = r('certs.files')
  out.push(
    missing.length + unreadable.length === 0
      ? fr.ok(`${plural(files.length, 'certificate')} and their keys present`)
      : fr.fail(
          [
            missing.length > 0 ? `missing ${missing.join(', ')}` : '',
            unreadable.length > 0 ? `not a certificate: ${unreadable.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join('; '),
          'run `kflan init` to install the certificates from the state directory',
        ),
  )
  if (parsed.size === 0) return out

  // Expiry
  const er = r('certs.expiry')
  const labelOf = (p: string) => files.find((f) => f.path === p)!.label
  const entries = [...parsed].map(([p, x]) => ({label: labelOf(p), x}))
  const expired = entries.filter((e) => e.x.daysLeft < 0)
  const soon = entries.filter((e) => e.x.daysLeft >= 0 && e.x.daysLeft < WARN_DAYS)
  const first = entries.reduce((a, b) => (b.x.daysLeft < a.x.daysLeft ? b : a))
  const day = (e: {x: CertDescription}) => e.x.notAfter.toISOString().slice(0, 10)
  if (expired.length > 0)
    out.push(
      er.fail(
        `expired: ${expired.map((e) => `${e.label} (on ${day(e)})`).join(', ')}`,
        'run `kflan init`: it re-issues expired and expiring certificates and rolls them out',
      ),
    )
  else if (soon.length > 0)
    out.push(
      er.warn(
        `expiring within ${WARN_DAYS} days: ${soon.map((e) => `${e.label} in ${e.x.daysLeft} days (${day(e)})`).join(', ')}`,
        'run `kflan init`: it re-issues certificates that expire within 30 days',
      ),
    )
  else
    out.push(
      er.ok(
        `${plural(entries.length, 'certificate')} valid; the first to expire is ${first.label} in ${first.x.daysLeft} days (${day(first)})`,
      ),
    )

  // SANs: the server and peer certificates must cover the member's address.
  if (h.roles.etcd) {
    const sr = r('certs.san')
    const lacking: string[] = []
    const extra: string[] = []
    const names = memberCertNames(h.name)
    const paths = etcdPaths(c)
    for (const f of files.filter((x) => x.plan === names.server || x.plan === names.peer)) {
      const pem = d.files[f.path]
      if (!pem || !parsed.has(f.path)) continue
      const x = parsed.get(f.path)!
      if (!certCoversAddress(pem, h.address)) lacking.push(`${f.label} (SANs ${x.sans.join(',') || 'none'})`)
      const want = plan.find((p) => p.name === f.plan)
      if (want) {
        const miss = [...want.ipAddresses.map((a) => `IP:${a}`), ...want.dnsNames.map((n) => `DNS:${n}`)].filter(
          (s) => !x.sans.includes(s) && s !== `IP:${h.address}`,
        )
        if (miss.length > 0) extra.push(`${f.label} lacks ${miss.join(',')}`)
      }
    }

    if (lacking.length > 0) {
      out.push(
        sr.fail(
          `not valid for ${h.address}: ${lacking.join('; ')}; clients and peers connecting to ${h.address} reject it ("certificate is valid for ..., not ${h.address}")`,
          "run `kflan init`: it re-issues certificates whose SANs lack the member's address and rolls them out",
        ),
      )
    } else if (extra.length > 0)
      out.push(
        sr.warn(
          `cover ${h.address}, but ${extra.join('; ')}`,
          'run `kflan init` to re-issue them with every SAN the inventory asks for',
        ),
      )
    else if (parsed.has(paths.serverCert))
      out.push(sr.ok(`${posix.basename(paths.serverCert)} and ${posix.basename(paths.peerCert)} cover ${h.address}`))
  }

  // Extended key usages
  const ur = r('certs.usage')
  const usageProblems: string[] = []
  const usageOk: string[] = []
  for (const f of files) {
    const x = parsed.get(f.path)
    const want = plan.find((p) => p.name === f.plan)
    if (!x || !want || want.extKeyUsage.length === 0) continue
    const lack = want.extKeyUsage.filter((u) => !x.usages.includes(u))
    if (lack.length > 0) usageProblems.push(`${f.label} lacks ${lack.join(',')}`)
    else usageOk.push(`${f.label} ${want.extKeyUsage.join('+')}`)
  }

  if (usageProblems.length > 0)
    out.push(
      ur.fail(
        usageProblems.join('; '),
        'server certificates need serverAuth, peer certificates serverAuth and clientAuth, client certificates clientAuth: run `kflan init` to re-issue them',
      ),
    )
  else if (usageOk.length > 0) out.push(ur.ok(`extended key usages as needed: ${usageOk.join(', ')}`))

  // Chains
  const cr = r('certs.chain')
  const broken: string[] = []
  for (const f of files) {
    const pem = d.files[f.path]
    const caPem = d.files[f.caPath]
    if (!pem || !caPem || !parsed.has(f.path) || !parsed.has(f.caPath)) continue
    if (!verifyChain(pem, caPem))
      broken.push(`${f.label}${f.isCa ? ' (not a self-signed CA)' : ` (issuer ${parsed.get(f.path)!.issuer})`}`)
  }

  if (broken.length > 0)
    out.push(
      cr.fail(
        `not signed by the CA next to it: ${broken.join(', ')}`,
        "the certificates on this host come from another CA: run `kflan init` to install the state directory's PKI",
      ),
    )
  else out.push(cr.ok('every certificate chains to the CA installed next to it'))

  // Keys
  const kr = r('certs.key')
  const mismatched: string[] = []
  for (const f of files) {
    const pem = d.files[f.path]
    const key = f.keyPath ? d.files[f.keyPath] : undefined
    if (!pem || key === undefined || !parsed.has(f.path)) continue
    if (!keyMatchesCert(key, pem)) mismatched.push(`${f.keyPath} does not belong to ${f.label}`)
  }

  if (mismatched.length > 0)
    out.push(
      kr.fail(
        mismatched.join('; '),
        'the certificate and key were installed from different issuances: run `kflan init`',
      ),
    )
  else out.push(kr.ok('every private key matches its certificate'))

  // Same CA
  if (ca) {
    const car = r('certs.ca')
    const differs = files
      .filter((f) => f.isCa && d.files[f.path])
      .filter((f) => caFingerprint(d.files[f.path]!) !== ca.fingerprint)
      .map((f) => f.label)
    if (differs.length > 0)
      out.push(
        car.fail(
          `${listing(differs)} ${differs.length === 1 ? 'differs' : 'differ'} from ${ca.from}`,
          'this host trusts another CA: run `kflan init` with the state directory that built the cluster (--state-dir)',
        ),
      )
    else out.push(car.ok(`CA equals ${ca.from}`))
  }

  return out
}
