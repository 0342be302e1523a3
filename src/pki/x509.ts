import forge from 'node-forge'
/**
 * Certificate structure: node-forge's ASN.1 helpers build the TBSCertificate
 * (names, validity, extensions) around the SubjectPublicKeyInfo that
 * node:crypto exported; node:crypto signs it; forge wraps the result in the
 * Certificate SEQUENCE and PEM.
 *
 * forge's own Certificate.sign()/getTBSCertificate() are not used: they only
 * know RSA public keys, sign in pure JS, and write NULL parameters into an
 * ecdsa-with-SHA256 AlgorithmIdentifier (RFC 5758 says absent).
 */
import {createHash, type KeyObject, randomBytes, sign} from 'node:crypto'

import {keyAlgorithmOf} from './keys.js'

const {asn1, pki} = forge

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'
const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11'
const OID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14'
const GENERALIZED_TIME_FROM = Date.UTC(2050, 0, 1)

// forge exports these at run time; @types/node-forge does not declare them.
const {certificateExtensionsToAsn1} = pki as unknown as {certificateExtensionsToAsn1(exts: unknown[]): forge.asn1.Asn1}
const fromDer = (der: Buffer): forge.asn1.Asn1 =>
  (asn1.fromDer as unknown as (b: string, o: object) => forge.asn1.Asn1)(der.toString('binary'), {
    decodeBitStrings: false,
  })
const toDer = (obj: forge.asn1.Asn1): Buffer => Buffer.from(asn1.toDer(obj).getBytes(), 'binary')

export interface DistinguishedName {
  commonName: string
  organization: string
  organizationalUnit: string
}

export interface KeyUsageFlags {
  digitalSignature?: boolean
  keyEncipherment?: boolean
  keyCertSign?: boolean
  cRLSign?: boolean
}

export interface CertificateTemplate {
  /** Positive serial, big-endian, minimal (see randomSerial). */
  serial: Buffer
  notBefore: Date
  notAfter: Date
  subject: DistinguishedName
  /** DER Name of the issuer, taken from the CA certificate; omitted for a self-signed certificate. */
  issuerNameDer?: Buffer
  /** DER SubjectPublicKeyInfo from node:crypto. */
  spkiDer: Buffer
  isCA: boolean
  keyUsage: KeyUsageFlags
  extKeyUsage: string[]
  dnsNames: string[]
  ipAddresses: string[]
  /** Issuer's key identifier (authorityKeyIdentifier); omitted for a self-signed certificate. */
  authorityKeyId?: Buffer
}

/** Build, sign and encode a certificate. The signing key is the issuer's (the subject's own for a self-signed CA). */
export function buildCertificate(t: CertificateTemplate, signingKey: KeyObject): {der: Buffer; pem: string} {
  const algorithm = signatureAlgorithm(signingKey)
  const holder = pki.createCertificate()
  holder.setSubject([
    {shortName: 'CN', value: t.subject.commonName, valueTagClass: asn1.Type.UTF8 as unknown as forge.asn1.Class},
    {shortName: 'O', value: t.subject.organization, valueTagClass: asn1.Type.UTF8 as unknown as forge.asn1.Class},
    {
      shortName: 'OU',
      value: t.subject.organizationalUnit,
      valueTagClass: asn1.Type.UTF8 as unknown as forge.asn1.Class,
    },
  ])
  holder.setExtensions(extensions(t))
  const subjectName = pki.distinguishedNameToAsn1(holder.subject)
  const issuerName = t.issuerNameDer ? fromDer(t.issuerNameDer) : subjectName

  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes()), // v3
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, t.serial.toString('binary')),
    algorithm(),
    issuerName,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [time(t.notBefore), time(t.notAfter)]),
    subjectName,
    spki(t.spkiDer),
    certificateExtensionsToAsn1(holder.extensions),
  ])
  const tbsDer = toDer(tbs)
  const signature = sign('sha256', tbsDer, signingKey)
  const cert = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithm(),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\u0000' + signature.toString('binary')),
  ])
  const der = toDer(cert)
  const pem = forge.pem
    .encode({type: 'CERTIFICATE', body: der.toString('binary')}, {maxline: 64})
    .replaceAll('\r\n', '\n')
  return {der, pem}
}

/** The AlgorithmIdentifier for a signature by this key with SHA-256. */
function signatureAlgorithm(key: KeyObject): () => forge.asn1.Asn1 {
  const kind = keyAlgorithmOf(key)
  if (kind === 'ecdsa') {
    // ecdsa-with-SHA256: parameters absent (RFC 5758 §3.2).
    return () =>
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_ECDSA_WITH_SHA256).getBytes()),
      ])
  }

  if (kind === 'rsa') {
    // sha256WithRSAEncryption: parameters NULL (RFC 4055 §5).
    return () =>
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_SHA256_WITH_RSA).getBytes()),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
      ])
  }

  throw new Error(`cannot sign with a ${key.asymmetricKeyType} key: only EC P-256 and RSA issuers are supported`)
}

function time(date: Date): forge.asn1.Asn1 {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds.
  const d = new Date(Math.floor(date.getTime() / 1000) * 1000)
  return d.getTime() < GENERALIZED_TIME_FROM
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d))
}

/** node:crypto's SPKI DER as a forge ASN.1 node that re-encodes to the very same bytes. */
function spki(der: Buffer): forge.asn1.Asn1 {
  const node = fromDer(der)
  if (!toDer(node).equals(der)) throw new Error('SubjectPublicKeyInfo did not survive an ASN.1 round trip')
  return node
}

function extensions(t: CertificateTemplate): object[] {
  const exts: object[] = [
    {name: 'basicConstraints', critical: true, cA: t.isCA},
    {name: 'keyUsage', critical: true, ...t.keyUsage},
  ]
  if (t.extKeyUsage.length > 0) {
    exts.push({name: 'extKeyUsage', ...Object.fromEntries(t.extKeyUsage.map((u) => [u, true]))})
  }

  exts.push({
    id: OID_SUBJECT_KEY_IDENTIFIER,
    name: 'subjectKeyIdentifier',
    value: asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.OCTETSTRING,
      false,
      subjectKeyIdentifier(t.spkiDer).toString('binary'),
    ),
  })
  if (t.authorityKeyId) {
    exts.push({name: 'authorityKeyIdentifier', keyIdentifier: t.authorityKeyId.toString('binary')})
  }

  if (t.dnsNames.length + t.ipAddresses.length > 0) {
    exts.push({
      name: 'subjectAltName',
      altNames: [...t.dnsNames.map((value) => ({type: 2, value})), ...t.ipAddresses.map((ip) => ({type: 7, ip}))],
    })
  }

  return exts
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
export function subjectKeyIdentifier(spkiDer: Buffer): Buffer {
  const node = fromDer(spkiDer)
  const bitString = (node.value as forge.asn1.Asn1[])[1]
  if (!bitString || bitString.type !== asn1.Type.BITSTRING || typeof bitString.value !== 'string') {
    throw new Error('not a SubjectPublicKeyInfo')
  }

  return createHash('sha1')
    .update(Buffer.from(bitString.value.slice(1), 'binary'))
    .digest()
}

/** The subject Name of a DER certificate, as DER: the exact bytes to use as the issuer of certificates it signs. */
export function subjectNameDer(certDer: Buffer): Buffer {
  const tbs = (fromDer(certDer).value as forge.asn1.Asn1[])[0]
  const fields = tbs?.value as forge.asn1.Asn1[] | undefined
  if (!fields) throw new Error('not a certificate')
  const hasVersion = fields[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC && fields[0]?.type === 0
  const subject = fields[(hasVersion ? 1 : 0) + 4]
  if (!subject) throw new Error('not a certificate')
  return toDer(subject)
}

/** A random positive 128-bit serial, minimally encoded (first byte 0x01..0x7f). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16)
  serial[0] = serial[0]! & 0x7f || 0x01
  return serial
}
