export {DEFAULT_RENEW_BEFORE_DAYS, ensurePki} from './ensure.js'
export {PkiError} from './errors.js'
export {
  certCoversAddress,
  daysLeft,
  describeCertificate,
  inspectCertificates,
  keyMatchesCert,
  verifyChain,
} from './inspect.js'
export {
  CA_COMMON_NAME,
  CA_NAME,
  CLIENT_NAMES,
  DEFAULT_CA_VALIDITY_DAYS,
  DEFAULT_VALIDITY_DAYS,
  FLANNEL_CERT_NAME,
  LOCAL_SANS,
  memberCertNames,
  ORGANIZATION,
  planCertificates,
} from './plan.js'
export {canonicalIp, parseSan} from './sans.js'
export {certificateFileNames, certificatePaths, pkiDir, readCertificatePair} from './store.js'
/**
 * The cluster's PKI: a CA and the etcd server, peer and client certificates,
 * kept in <stateDir>/pki and reused across runs. See docs/pki.md.
 */
export type {
  CertAction,
  CertDescription,
  CertFileDescription,
  CertKind,
  CertOutcome,
  CertSpec,
  EnsureOptions,
  ExtKeyUsageName,
  KeyAlgorithm,
  PkiMember,
  PkiReport,
  PkiRequest,
} from './types.js'
