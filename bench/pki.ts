/**
 * PKI issuance at scale: `npx tsx bench/pki.ts [members]`.
 *
 * Issues the full PKI (CA, a server and a peer certificate per member, two
 * client certificates) for a 100-member inventory into a temporary directory,
 * with ECDSA P-256 (target: ≤ 1 s on a 2-core machine) and with RSA 2048
 * (bounded by key generation), then times a second run that reuses everything.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'

import {ensurePki, type KeyAlgorithm, type PkiRequest} from '../src/pki/index.js'

const members = Number(process.argv[2] ?? 100)

function inventory(keyAlgorithm: KeyAlgorithm): PkiRequest {
  return {
    cluster: 'bench',
    keyAlgorithm,
    members: Array.from({length: members}, (_, i) => ({
      name: `etcd${i + 1}`,
      addresses: [`10.${Math.floor(i / 250)}.${i % 250}.${(i % 200) + 10}`],
    })),
    extraSans: ['etcd.bench.example', '192.168.100.1'],
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const result = await fn()
  return [result, performance.now() - t0]
}

console.log(`node ${process.version}, ${availableParallelism()} CPUs, ${members} members`)
const dirs: string[] = []
try {
  for (const alg of ['ecdsa', 'rsa'] as const) {
    const dir = await mkdtemp(join(tmpdir(), `kflan-bench-${alg}-`))
    dirs.push(dir)
    const [first, issueMs] = await timed(() => ensurePki(dir, inventory(alg)))
    const issued = first.certificates.filter((c) => c.action === 'issued').length
    const [second, reuseMs] = await timed(() => ensurePki(dir, inventory(alg)))
    const reused = second.certificates.filter((c) => c.action === 'reused').length
    console.log(
      `${alg.padEnd(5)}  issue: ${issueMs.toFixed(0).padStart(6)} ms for ${issued} certificates` +
        `   reuse: ${reuseMs.toFixed(0).padStart(5)} ms for ${reused} certificates (changed: ${second.changed})`,
    )
  }
} finally {
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
}
