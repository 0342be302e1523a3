/**
 * Certificates fetched from the hosts (pure): present and readable, expiry, SANs covering each
 * member's address, extended key usages, chain to the host's CA, key matching, and the same CA
 * on every host (equal to the state directory's CA when there is one).
 */
import {X509Certificate} from 'node:crypto'
import {posix} from 'node:path'

import type {Cluster, Host} from '../inventory/model.js'

import {pkiRequest} from '../pki/cluster.js'
import {type CertSpec, FLANNEL_CERT_NAME, memberCertNames, planCertificates} from '../pki/index.js'
import {etcdPaths, flannelPaths} from '../render/paths.js'
import {hostCerts} from './certs-host.js'
import {type CheckResult, type DoctorInput, withData} from './types.js'

export interface CertFile {
  /** Short label: server.pem, flannel ca.pem, ... */
  label: string
  path: string
  keyPath?: string
  /** The CA it must chain to. */
  caPath: string
  /** The planned certificate it must match (SANs, usages). */
  plan?: string
  isCa?: boolean
}

export function certFiles(c: Cluster, h: Host): CertFile[] {
  const out: CertFile[] = []
  if (h.roles.etcd) {
    const p = etcdPaths(c)
    const names = memberCertNames(h.name)
    out.push(
      {label: `etcd ${posix.basename(p.ca)}`, path: p.ca, caPath: p.ca, isCa: true},
      {label: posix.basename(p.serverCert), path: p.serverCert, keyPath: p.serverKey, caPath: p.ca, plan: names.server},
      {label: posix.basename(p.peerCert), path: p.peerCert, keyPath: p.peerKey, caPath: p.ca, plan: names.peer},
    )
  }

  if (h.roles.flannel) {
    const p = flannelPaths(c)
    out.push(
      {label: `flannel ${posix.basename(p.ca)}`, path: p.ca, caPath: p.ca, isCa: true},
      {label: posix.basename(p.cert), path: p.cert, keyPath: p.key, caPath: p.ca, plan: FLANNEL_CERT_NAME},
    )
  }

  return out
}

export function caFingerprint(pem: string): string | undefined {
  try {
    return new X509Certificate(pem).fingerprint256
  } catch {
    return undefined
  }
}

export function certChecks(input: DoctorInput): CheckResult[] {
  const c = input.cluster
  let plan: CertSpec[] = []
  try {
    plan = planCertificates(pkiRequest(c))
  } catch {
    /* names the PKI cannot use are reported by `kflan validate` */
  }

  const localCa = input.localCaPem ? caFingerprint(input.localCaPem) : undefined
  const hosts = withData(input).filter((s) => s.host.roles.etcd || s.host.roles.flannel)

  // The CA the hosts should have: the state dir's, else the one most hosts have.
  let reference = localCa
  let referenceFrom = "the state directory's CA"
  if (!reference) {
    const count = new Map<string, number>()
    for (const s of hosts)
      for (const f of certFiles(c, s.host).filter((x) => x.isCa)) {
        const fp = s.data.files[f.path] ? caFingerprint(s.data.files[f.path]!) : undefined
        if (fp) count.set(fp, (count.get(fp) ?? 0) + 1)
      }

    reference = [...count].sort((a, b) => b[1] - a[1])[0]?.[0]
    referenceFrom = 'the CA most hosts have'
  }

  const out: CheckResult[] = []
  for (const s of hosts)
    out.push(
      ...hostCerts(
        c,
        s.host,
        s.data,
        plan,
        input.now,
        reference ? {fingerprint: reference, from: referenceFrom} : undefined,
      ),
    )
  return out
}
