/**
 * ensurePki: make <stateDir>/pki hold the certificates a PkiRequest calls for,
 * reusing every stored certificate that is still right, so that a second run
 * writes nothing and the bytes rendered for hosts stay the same.
 */
import type {KeyObject, X509Certificate} from 'node:crypto'

import type {CertOutcome, CertSpec, EnsureOptions, KeyAlgorithm, PkiReport, PkiRequest} from './types.js'

import {PkiError} from './errors.js'
import {chainsTo, notAfterOf, notBeforeOf, parseCertificate, usagesOf} from './inspect.js'
import {issueCa, issueLeaf, type Issuer, issuerFrom} from './issue.js'
import {generateKey, keyAlgorithmOf, parsePrivateKey} from './keys.js'
import {planCertificates} from './plan.js'
import {diffSans, parseSubjectAltNameText, sanSet} from './sans.js'
import {
  certificatePaths,
  ensurePkiDir,
  listCertificateNames,
  pkiDir,
  readCertificatePair,
  syncPkiDir,
  tightenKeyMode,
  writeCertificatePair,
} from './store.js'

export const DEFAULT_RENEW_BEFORE_DAYS = 30
const DAY_MS = 86_400_000

type Verdict =
  {reuse: true; reason: string; cert: X509Certificate} | {reuse: false; action: 'issued' | 'reissued'; reason: string}

interface Context {
  now: Date
  renewBeforeDays: number
  algorithm: KeyAlgorithm
}

/**
 * Issue what is missing or wrong, reuse the rest. Throws PkiError when the CA
 * cannot be used (key missing or corrupt, expired) while certificates exist.
 */
export async function ensurePki(stateDir: string, req: PkiRequest, opts: EnsureOptions = {}): Promise<PkiReport> {
  const specs = planCertificates(req)
  const ctx: Context = {
    now: opts.now ?? new Date(),
    renewBeforeDays: opts.renewBeforeDays ?? DEFAULT_RENEW_BEFORE_DAYS,
    algorithm: req.keyAlgorithm,
  }
  const dir = pkiDir(stateDir)
  const warnings: string[] = []
  if (await ensurePkiDir(stateDir)) warnings.push(`tightened ${dir} to mode 0700`)

  const [caSpec, ...leafSpecs] = specs as [CertSpec, ...CertSpec[]]
  const existing = await listCertificateNames(stateDir)
  const planned = new Set(specs.map((s) => s.name))
  const orphans = existing.filter((n) => !planned.has(n))
  let changed = false

  // The CA.
  const ca = await loadCa(
    stateDir,
    existing.filter((n) => n !== 'ca'),
    ctx,
    warnings,
  )
  let issuer: Issuer
  let caOutcome: CertOutcome
  if (ca.kind === 'reuse') {
    issuer = ca.issuer
    caOutcome = outcome(stateDir, caSpec, 'reused', ca.reason, ca.issuer.cert)
  } else {
    const fresh = await issueCa(caSpec, ctx.algorithm, ctx.now)
    await writeCertificatePair(stateDir, 'ca', fresh.certPem, fresh.keyPem)
    changed = true
    issuer = fresh.issuer
    caOutcome = outcome(stateDir, caSpec, 'issued', ca.reason, fresh.cert)
  }

  // The leaves: judge every stored one, then generate keys for the rest at once.
  const judged = await Promise.all(
    leafSpecs.map(async (spec) => {
      const {certPem, keyPem} = await readCertificatePair(stateDir, spec.name)
      const verdict = judgeLeaf(spec, certPem, keyPem, issuer, ctx)
      const tightened = verdict.reuse && (await tightenKeyMode(certificatePaths(stateDir, spec.name).keyFile))
      return {verdict, tightened}
    }),
  )
  const verdicts = judged.map((j) => j.verdict)
  for (const [i, spec] of leafSpecs.entries())
    if (judged[i]!.tightened) warnings.push(`tightened ${spec.name}-key.pem to mode 0600`)
  const toIssue = leafSpecs.filter((_, i) => !verdicts[i]!.reuse)
  const keys = await Promise.all(toIssue.map(() => generateKey(ctx.algorithm)))
  const issued = new Map(toIssue.map((spec, i) => [spec.name, issueLeaf(spec, keys[i]!, issuer, ctx.now)]))
  await Promise.all(
    [...issued].map(([name, {certPem, keyPem}]) => writeCertificatePair(stateDir, name, certPem, keyPem)),
  )
  if (issued.size > 0) changed = true
  if (changed) await syncPkiDir(stateDir)

  const leafOutcomes = leafSpecs.map((spec, i) => {
    const verdict = verdicts[i]!
    return verdict.reuse
      ? outcome(stateDir, spec, 'reused', verdict.reason, verdict.cert)
      : outcome(stateDir, spec, verdict.action, verdict.reason, issued.get(spec.name)!.cert)
  })
  return {dir, certificates: [caOutcome, ...leafOutcomes], changed, orphans, warnings}
}

type CaState = {kind: 'reuse'; issuer: Issuer; reason: string} | {kind: 'issue'; reason: string}

async function loadCa(stateDir: string, leavesOnDisk: string[], ctx: Context, warnings: string[]): Promise<CaState> {
  const {certFile, keyFile} = certificatePaths(stateDir, 'ca')
  const {certPem, keyPem} = await readCertificatePair(stateDir, 'ca')
  const redo = `delete ${pkiDir(stateDir)} to start over with a new CA, then re-deploy every certificate to every host`

  if (certPem === undefined || keyPem === undefined) {
    if (certPem !== undefined) {
      throw new PkiError(`the CA key ${keyFile} is missing`, `restore it from a backup, or ${redo}`)
    }

    if (leavesOnDisk.length > 0) {
      throw new PkiError(
        `the CA certificate ${certFile} is missing, but ${leavesOnDisk.length} certificate(s) signed by it are in ${pkiDir(stateDir)}`,
        `restore ca.pem and ca-key.pem from a backup, or ${redo}`,
      )
    }

    return {kind: 'issue', reason: 'new'}
  }

  let cert: X509Certificate
  try {
    cert = parseCertificate(certPem)
  } catch {
    throw new PkiError(`the CA certificate ${certFile} cannot be read`, `restore it from a backup, or ${redo}`)
  }

  const key: KeyObject | undefined = parsePrivateKey(keyPem)
  if (key === undefined) {
    throw new PkiError(`the CA key ${keyFile} cannot be read`, `restore it from a backup, or ${redo}`)
  }

  if (!cert.checkPrivateKey(key)) {
    throw new PkiError(`the CA key ${keyFile} does not belong to ${certFile}`, `restore the matching pair, or ${redo}`)
  }

  if (!cert.ca || !chainsTo(cert, cert)) {
    throw new PkiError(`${certFile} is not a self-signed CA certificate`, redo)
  }

  const keyAlg = keyAlgorithmOf(key)
  if (keyAlg === 'other') {
    throw new PkiError(`the CA key ${keyFile} is neither ECDSA P-256 nor RSA`, redo)
  }

  const left = daysUntil(notAfterOf(cert), ctx.now)
  if (left < 0) {
    throw new PkiError(`the CA certificate expired ${-left} day(s) ago`, redo)
  }

  if (left < ctx.renewBeforeDays) {
    warnings.push(`the CA expires in ${left} day(s); the certificates it signs cannot outlive it (${redo})`)
  }

  if (keyAlg !== ctx.algorithm) {
    warnings.push(
      `the CA key is ${keyAlg} while keyAlgorithm is ${ctx.algorithm}: the CA is kept (${redo} to change it)`,
    )
  }

  if (await tightenKeyMode(keyFile)) warnings.push('tightened ca-key.pem to mode 0600')
  return {kind: 'reuse', issuer: issuerFrom(cert, key), reason: `valid for ${left} more days`}
}

/** Whether a stored leaf can stay, and why (or why not). */
function judgeLeaf(
  spec: CertSpec,
  certPem: string | undefined,
  keyPem: string | undefined,
  issuer: Issuer,
  ctx: Context,
): Verdict {
  const reissue = (reason: string): Verdict => ({reuse: false, action: 'reissued', reason})
  if (certPem === undefined && keyPem === undefined) return {reuse: false, action: 'issued', reason: 'new'}
  if (certPem === undefined) return reissue('certificate file missing')
  if (keyPem === undefined) return reissue('key file missing')
  let cert: X509Certificate
  try {
    cert = parseCertificate(certPem)
  } catch {
    return reissue('certificate unreadable')
  }

  const key = parsePrivateKey(keyPem)
  if (key === undefined) return reissue('key unreadable')
  if (!chainsTo(cert, issuer.cert)) return reissue('not signed by the current CA')
  if (!cert.checkPrivateKey(key)) return reissue('key does not match')
  const keyAlg = keyAlgorithmOf(key)
  if (keyAlg !== ctx.algorithm) return reissue(`key algorithm changed: ${keyAlg} → ${ctx.algorithm}`)

  const reasons: string[] = []
  const cn = cert.subject
    .split('\n')
    .find((l) => l.startsWith('CN='))
    ?.slice(3)
  if (cn !== spec.commonName) reasons.push(`CN changed: ${cn ?? '(none)'} → ${spec.commonName}`)
  const {added, removed} = diffSans(sanSet(parseSubjectAltNameText(cert.subjectAltName)), spec)
  if (added.length + removed.length > 0) {
    reasons.push(`SANs changed: ${[...added.map((s) => `+${s}`), ...removed.map((s) => `-${s}`)].join(' ')}`)
  }

  const usages = usagesOf(cert)
  if (usages.length !== spec.extKeyUsage.length || !spec.extKeyUsage.every((u) => usages.includes(u))) {
    reasons.push(`usages changed: ${usages.join(',') || '(none)'} → ${spec.extKeyUsage.join(',')}`)
  }

  const notBefore = notBeforeOf(cert)
  if (notBefore.getTime() > ctx.now.getTime()) reasons.push(`not valid before ${notBefore.toISOString()}`)
  const notAfter = notAfterOf(cert)
  const left = daysUntil(notAfter, ctx.now)
  // Renewing only helps if the new certificate can last longer (it is capped at the CA's notAfter).
  if (left < ctx.renewBeforeDays && notAfter.getTime() < issuer.notAfter.getTime()) {
    reasons.push(left < 0 ? `expired ${-left} day(s) ago` : `expires in ${left} day(s)`)
  }

  if (reasons.length > 0) return reissue(reasons.join('; '))
  return {reuse: true, reason: `valid for ${left} more days`, cert}
}

function daysUntil(date: Date, now: Date): number {
  return Math.floor((date.getTime() - now.getTime()) / DAY_MS)
}

function outcome(
  stateDir: string,
  spec: CertSpec,
  action: CertOutcome['action'],
  reason: string,
  cert: X509Certificate,
): CertOutcome {
  return {
    name: spec.name,
    kind: spec.kind,
    commonName: spec.commonName,
    ...(spec.member === undefined ? {} : {member: spec.member}),
    action,
    reason,
    ...certificatePaths(stateDir, spec.name),
    notAfter: notAfterOf(cert),
    serial: cert.serialNumber.toLowerCase(),
  }
}
