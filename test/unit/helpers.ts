import {fileURLToPath} from 'node:url'
import {readFileSync} from 'node:fs'
import {parseInventory} from '../../src/inventory/load.js'
import type {Cluster} from '../../src/inventory/model.js'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Parses inventory text, failing the test with the diagnostics when it does not load. */
export function clusterFrom(text: string, file = '/inv/inventory.yaml'): Cluster {
  const r = parseInventory(text, file)
  if (!r.cluster) throw new Error('inventory did not load:\n' + JSON.stringify(r.diagnostics, null, 2))
  return r.cluster
}

export function exampleCluster(name: 'example' | 'ha'): Cluster {
  const file = `${repoRoot}inventories/${name}.yaml`
  return clusterFrom(readFileSync(file, 'utf8'), file)
}

/** A stand-in PKI lookup for golden files: certificates are random, their names are not. */
export const fakePki = (file: string) => `-----FAKE ${file}-----\n`

/** A minimal valid inventory, with overrides spliced in as YAML text. */
export function minimalInventory(extra = ''): string {
  return `cluster: t
hosts:
  - {name: m1, address: 10.0.0.11}
  - {name: n1, address: 10.0.0.21}
  - {name: n2, address: 10.0.0.22}
roles:
  masters: [m1]
  nodes: [n1, n2]
etcd:
  version: 3.4.23
  tarball: etcd.tgz
flannel:
  version: 0.26.1
  tarball: flannel.tgz
  network: 10.244.0.0/16
${extra}`
}
