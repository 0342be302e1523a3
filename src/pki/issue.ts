/**
 * Issuing: a CertSpec plus a fresh key becomes a signed certificate. The CA
 * signs itself; leaves are signed by an Issuer loaded from the store.
 */
import {type KeyObject, X509Certificate} from 'node:crypto'

import type {CertSpec, KeyAlgorithm} from './types.js'

import {chainsTo, notAfterOf, parseCertificate} from './inspect.js'
import {type GeneratedKey, generateKey, keyAlgorithmOf} from './keys.js'
import {diffSans, parseSubjectAltNameText, sanSet} from './sans.js'
import {buildCertificate, type KeyUsageFlags, randomSerial, subjectKeyIdentifier, subjectNameDer} from './x509.js'

const DAY_MS = 86_400_000
/** Backdate notBefore like cfssl, for hosts whose clocks run a little behind. */
export const BACKDATE_MS = 5 * 60_000

export interface Issuer {
  cert: X509Certificate
  key: KeyObject
  /** The CA's subject Name, DER, used verbatim as the issuer Name of leaves. */
  nameDer: Buffer
  /** The CA's key identifier, used as the leaves' authorityKeyIdentifier. */
  keyId: Buffer
  notAfter: Date
}

export interface Issued {
  certPem: string
  keyPem: string
  cert: X509Certificate
}

/** Build an Issuer from a CA certificate and its (already matched) private key. */
export function issuerFrom(cert: X509Certificate, key: KeyObject): Issuer {
  return {
    cert,
    key,
    nameDer: subjectNameDer(cert.raw),
    keyId: subjectKeyIdentifier(cert.publicKey.export({type: 'spki', format: 'der'})),
    notAfter: notAfterOf(cert),
  }
}

/** A new self-signed CA. */
export async function issueCa(spec: CertSpec, algorithm: KeyAlgorithm, now: Date): Promise<Issued & {issuer: Issuer}> {
  const key = await generateKey(algorithm)
  const {pem, der} = buildCertificate(
    {
      serial: randomSerial(),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + spec.validityDays * DAY_MS),
      subject: spec,
      spkiDer: key.spkiDer,
      isCA: true,
      keyUsage: {keyCertSign: true, cRLSign: true},
      extKeyUsage: [],
      dnsNames: [],
      ipAddresses: [],
    },
    key.privateKey,
  )
  const cert = new X509Certificate(der)
  if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    throw new Error('internal error: the new CA certificate does not verify itself')
  }

  return {certPem: pem, keyPem: key.privateKeyPem, cert, issuer: issuerFrom(cert, key.privateKey)}
}

/**
 * A leaf certificate for `spec` around `key`, signed by `issuer`. Its notAfter
 * is capped at the CA's: a certificate cannot usefully outlive its CA.
 * The result is read back and checked (chain, SANs) before it is returned.
 */
export function issueLeaf(spec: CertSpec, key: GeneratedKey, issuer: Issuer, now: Date): Issued {
  const wanted = now.getTime() + spec.validityDays * DAY_MS
  const keyUsage: KeyUsageFlags =
    keyAlgorithmOf(key.privateKey) === 'rsa'
      ? {digitalSignature: true, keyEncipherment: true}
      : {digitalSignature: true}
  const {pem, der} = buildCertificate(
    {
      serial: randomSerial(),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(Math.min(wanted, issuer.notAfter.getTime())),
      subject: spec,
      issuerNameDer: issuer.nameDer,
      spkiDer: key.spkiDer,
      isCA: false,
      keyUsage,
      extKeyUsage: spec.extKeyUsage,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      authorityKeyId: issuer.keyId,
    },
    issuer.key,
  )
  const cert = parseCertificate(der)
  const sanDiff = diffSans(sanSet(parseSubjectAltNameText(cert.subjectAltName)), spec)
  if (!chainsTo(cert, issuer.cert) || sanDiff.added.length + sanDiff.removed.length > 0) {
    throw new Error(`internal error: the certificate issued for ${spec.name} does not read back as planned`)
  }

  return {certPem: pem, keyPem: key.privateKeyPem, cert}
}
