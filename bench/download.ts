/**
 * Tarball download throughput from loopback: `npx tsx bench/download.ts [MB]` (default 100).
 *
 * Serves a random file of MB megabytes over http and https (certificate from a throwaway CA,
 * openssl) on 127.0.0.1 and downloads it with kflan's downloadVerified (hash while receiving,
 * temp file, rename) 3 times per scheme, in a child process that trusts the CA through
 * NODE_EXTRA_CA_CERTS as a user would; prints MB/s of each run and the median. Then times the
 * cache hit that a repeated `kflan init` does instead (no request; the cached file is hashed once).
 */
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {parseInventory} from '../src/inventory/load.js'
import {hashLocalFile} from '../src/remote/tarball.js'
import {downloadVerified} from '../src/tarballs/download.js'
import {prepareTarballs} from '../src/tarballs/index.js'
import {FileServer, sha256, throwawayCa} from '../test/e2e/loopback-server.js'

if (process.argv[2] === '--fetch') {
  // Child: one download, prints its milliseconds.
  const [url, digest, dest] = process.argv.slice(3)
  const r = await downloadVerified(new URL(url), digest, dest)
  console.log(String(r.ms))
  process.exit(0)
}

const mb = Number(process.argv[2] ?? 100)
const work = mkdtempSync(join(tmpdir(), 'kflan-bench-dl-'))
const data = randomBytes(mb * 1e6)
const file = {name: 'bench.tar.gz', data, sha256: sha256(data)}
const certs = await throwawayCa(work)
const servers = {http: new FileServer([file]), https: new FileServer([file], certs)}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`node ${process.version}, ${availableParallelism()} CPUs, ${mb} MB file, loopback`)
try {
  for (const [scheme, server] of Object.entries(servers)) {
    await server.start()
    const rates: number[] = []
    for (let i = 0; i < 3; i++) {
      const dest = join(work, `${scheme}-${i}`, file.name)
      // Asynchronous: the servers run in this process.
      const {stdout} = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', process.argv[1], '--fetch', server.url(file.name), file.sha256, dest],
        {
          env: {...process.env, NODE_EXTRA_CA_CERTS: certs.ca},
        },
      )
      const ms = Number(stdout.trim().split('\n').pop())
      rates.push(data.length / 1e6 / (ms / 1000))
      rmSync(join(work, `${scheme}-${i}`), {recursive: true, force: true})
    }

    console.log(
      `${scheme.padEnd(5)}: ${rates.map((r) => r.toFixed(0)).join(', ')} MB/s (median ${median(rates).toFixed(0)} MB/s)`,
    )
    await server.stop()
  }

  // A repeated run: the file is in the cache; prepareTarballs hashes it and makes no request.
  await servers.http.start()
  const inv = (url: string) => `cluster: b
hosts: [{name: m1, address: 10.0.0.11}]
roles: {masters: [m1], nodes: [m1]}
etcd: {version: 3.5.17, tarball: "${url}", sha256: ${file.sha256}}
flannel: {version: 0.26.1, tarball: "${url}", sha256: ${file.sha256}, network: 10.244.0.0/16}
`
  const cluster = parseInventory(inv(servers.http.url(file.name)), join(work, 'inv.yaml')).cluster!
  const cacheDir = join(work, 'cache')
  const t0 = performance.now()
  await prepareTarballs(cluster, {offline: false, cacheDir, output: 'silent'})
  const firstMs = performance.now() - t0
  const before = servers.http.requests.length
  const again = await prepareTarballs(cluster, {offline: true, cacheDir, output: 'silent'})
  // What a new process pays on a cache hit: hashing the cached file once (no request).
  const t1 = performance.now()
  await hashLocalFile(again.cluster.etcd.tarball)
  const hashMs = performance.now() - t1
  console.log(
    `prepareTarballs: first run ${(firstMs / 1000).toFixed(2)} s (one download for both sections), repeat: ${servers.http.requests.length - before} requests, re-hash of the cached file ${(hashMs / 1000).toFixed(2)} s`,
  )
  await servers.http.stop()
} finally {
  rmSync(work, {recursive: true, force: true})
}
