/** The bridge between the inventory and the PKI: which certificates a cluster needs, and their files. */
import {readFileSync} from 'node:fs'

import {KflanError} from '../errors.js'
import {type Cluster, etcdMembers} from '../inventory/model.js'
import {ensurePki, pkiDir, type PkiReport, type PkiRequest} from './index.js'

export function pkiRequest(c: Cluster): PkiRequest {
  return {
    cluster: c.name,
    keyAlgorithm: c.pki.keyAlgorithm,
    members: etcdMembers(c).map((h) => ({name: h.name, addresses: [h.address]})),
    extraSans: c.etcd.extraSans,
    validityDays: c.pki.validityDays,
  }
}

/** Generates or reuses the cluster's PKI in the state directory. */
export async function ensureClusterPki(c: Cluster, stateDir: string): Promise<PkiReport> {
  return ensurePki(stateDir, pkiRequest(c))
}

/** A lookup of PKI files by base name, read once each. */
export function pkiFiles(stateDir: string): (file: string) => string {
  const dir = pkiDir(stateDir)
  const cache = new Map<string, string>()
  return (file) => {
    let v = cache.get(file)
    if (v === undefined) {
      try {
        v = readFileSync(`${dir}/${file}`, 'utf8')
      } catch {
        throw new KflanError(`missing PKI file ${dir}/${file}`, {
          hint: 'run `kflan render` or `kflan init` to (re)generate the PKI',
        })
      }

      cache.set(file, v)
    }

    return v
  }
}

/** One line per certificate that was issued or re-issued, with the reason. */
export function pkiSummary(r: PkiReport): string[] {
  return r.certificates.filter((x) => x.action !== 'reused').map((x) => `${x.action} ${x.name}: ${x.reason}`)
}
