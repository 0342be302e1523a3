/**
 * Reading certificates back with node:crypto's X509Certificate: for
 * `kflan certs check`, for `kflan doctor` on certificates fetched from hosts,
 * and for ensurePki's reuse decisions. Everything but inspectCertificates is
 * pure.
 */
import {createPrivateKey, X509Certificate} from 'node:crypto'
import {isIP} from 'node:net'

import type {CertDescription, CertFileDescription} from './types.js'

import {keyAlgorithmOf} from './keys.js'
import {canonicalIp, parseSubjectAltNameText, sanSet} from './sans.js'
import {certificatePaths, listCertificateNames, readIfExists} from './store.js'

const DAY_MS = 86_400_000

export const EKU_NAMES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
}

/** Parse a PEM (or DER) certificate; throws on garbage. */
export function parseCertificate(pem: string | Buffer): X509Certificate {
  return new X509Certificate(pem)
}

export function notAfterOf(cert: X509Certificate): Date {
  return new Date(cert.validTo)
}

export function notBeforeOf(cert: X509Certificate): Date {
  return new Date(cert.validFrom)
}

/** EKU names of a parsed certificate, in certificate order. */
export function usagesOf(cert: X509Certificate): string[] {
  return (cert.keyUsage ?? []).map((oid) => EKU_NAMES[oid] ?? oid)
}

/** "CN=etcd1, O=kflan, OU=prod" from node's one-attribute-per-line form. */
function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ')
}

function commonNameOf(cert: X509Certificate): string {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='))
  return line ? line.slice(3) : ''
}

/** True when `cert` was issued and signed by `ca` (and `ca` is a CA certificate). */
export function chainsTo(cert: X509Certificate, ca: X509Certificate): boolean {
  return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey)
}

/** Describe a certificate; with `caPem`, also whether it chains to that CA. */
export function describeCertificate(
  pem: string | Buffer,
  opts: {caPem?: string | Buffer; now?: Date} = {},
): CertDescription {
  const cert = parseCertificate(pem)
  const sans = parseSubjectAltNameText(cert.subjectAltName)
  const set = sanSet(sans)
  const notAfter = notAfterOf(cert)
  let chainsToCa: boolean | null = null
  if (opts.caPem !== undefined) {
    try {
      chainsToCa = chainsTo(cert, parseCertificate(opts.caPem))
    } catch {
      chainsToCa = false
    }
  }

  return {
    subject: oneLine(cert.subject),
    commonName: commonNameOf(cert),
    issuer: oneLine(cert.issuer),
    serial: cert.serialNumber.toLowerCase(),
    ...set,
    sans: sans.map((s) => (s.type === 'ip' ? `IP:${s.value}` : `DNS:${s.value}`)),
    usages: usagesOf(cert),
    isCA: cert.ca,
    keyAlgorithm: keyAlgorithmOf(cert.publicKey),
    notBefore: notBeforeOf(cert),
    notAfter,
    daysLeft: Math.floor((notAfter.getTime() - (opts.now ?? new Date()).getTime()) / DAY_MS),
    chainsToCa,
  }
}

/** Whole days from `now` until the certificate expires; negative once it has. */
export function daysLeft(pem: string | Buffer, now: Date = new Date()): number {
  return Math.floor((notAfterOf(parseCertificate(pem)).getTime() - now.getTime()) / DAY_MS)
}

/**
 * Whether a client connecting to `address` accepts this certificate by name:
 * an IP must be an IP SAN, a DNS name must match a DNS SAN (the CN is ignored,
 * as Go's crypto/tls — etcd, flanneld — ignores it).
 */
export function certCoversAddress(pem: string | Buffer, address: string): boolean {
  const cert = parseCertificate(pem)
  const ip = canonicalIp(address)
  if (ip !== undefined) return cert.checkIP(ip) !== undefined
  if (isIP(address)) return false
  return cert.checkHost(address, {subject: 'never'}) !== undefined
}

/** Whether the private key belongs to the certificate; false for anything unparseable. */
export function keyMatchesCert(keyPem: string | Buffer, certPem: string | Buffer): boolean {
  try {
    return parseCertificate(certPem).checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    return false
  }
}

/** Whether `certPem` was issued and signed by the CA in `caPem`; false for anything unparseable. */
export function verifyChain(certPem: string | Buffer, caPem: string | Buffer): boolean {
  try {
    return chainsTo(parseCertificate(certPem), parseCertificate(caPem))
  } catch {
    return false
  }
}

/**
 * Every certificate in <stateDir>/pki: the CA first, then by name. Unreadable
 * certificates are skipped with their name in `unreadable`.
 */
export async function inspectCertificates(
  stateDir: string,
  opts: {now?: Date} = {},
): Promise<{certificates: CertFileDescription[]; unreadable: string[]}> {
  const names = await listCertificateNames(stateDir)
  const ordered = [...names.filter((n) => n === 'ca'), ...names.filter((n) => n !== 'ca')]
  const caPem = await readIfExists(certificatePaths(stateDir, 'ca').certFile)
  const certificates: CertFileDescription[] = []
  const unreadable: string[] = []
  for (const name of ordered) {
    const {certFile, keyFile} = certificatePaths(stateDir, name)
    const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)])
    if (certPem === undefined) continue
    let description: CertDescription
    try {
      description = describeCertificate(certPem, {caPem, now: opts.now})
    } catch {
      unreadable.push(name)
      continue
    }

    certificates.push({
      ...description,
      name,
      certFile,
      keyFile,
      keyMatches: keyPem === undefined ? null : keyMatchesCert(keyPem, certPem),
    })
  }

  return {certificates, unreadable}
}
