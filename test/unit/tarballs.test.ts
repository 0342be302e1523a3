import type {AddressInfo} from 'node:net'

/**
 * The download cache's layout and figures (pure), and downloadVerified / prepareTarballs against
 * HTTP servers this test starts on loopback (real sockets, no mocks): redirects, HTTP errors, a
 * truncated body, an idle server, a refused connection, digest checks, the cache and --offline.
 */
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {InputError} from '../../src/errors.js'
import {cacheDir, cachedPath, fileNameOf, formatProgress} from '../../src/tarballs/cache.js'
import {downloadVerified, removeStalePartials} from '../../src/tarballs/download.js'
import {DigestMismatchError, DownloadError} from '../../src/tarballs/errors.js'
import {prepareTarballs} from '../../src/tarballs/index.js'
import {clusterFrom, minimalInventory} from './helpers.js'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

describe('download cache layout', () => {
  it('lives in $XDG_CACHE_HOME/kflan, else ~/.cache/kflan (a relative XDG_CACHE_HOME is ignored)', () => {
    expect(cacheDir({XDG_CACHE_HOME: '/x/cache'}, '/home/u')).toBe('/x/cache/kflan')
    expect(cacheDir({XDG_CACHE_HOME: 'rel'}, '/home/u')).toBe('/home/u/.cache/kflan')
    expect(cacheDir({}, '/home/u')).toBe('/home/u/.cache/kflan')
  })

  it('keys each file by its digest, so another digest never finds it; keeps a safe file name', () => {
    const u = new URL('https://example.invalid/v3.5.17/etcd-v3.5.17-linux-amd64.tar.gz?sig=1')
    expect(cachedPath('/c', u, A)).toBe(`/c/tarballs/sha256-${A}/etcd-v3.5.17-linux-amd64.tar.gz`)
    expect(cachedPath('/c', u, B)).not.toBe(cachedPath('/c', u, A))
    expect(fileNameOf(new URL('https://h/'))).toBe('tarball')
    expect(fileNameOf(new URL('https://h/a/%2e%2e'))).toBe('tarball')
    expect(fileNameOf(new URL('https://h/a%20b;rm.tgz'))).toBe('a_b_rm.tgz')
    expect(() => cachedPath('/c', u, '../x')).toThrow(/not a sha256/)
  })

  it('formats progress as a person reads it', () => {
    expect(formatProgress(12_300_000, 40_100_000, 1000)).toBe('12.3 of 40.1 MB (30%), 12.3 MB/s')
    expect(formatProgress(500_000, undefined, 2000)).toBe('500 kB, 0.3 MB/s')
    expect(formatProgress(40_100_000, 40_100_000, 0)).toBe('40.1 of 40.1 MB (100%)')
  })
})

describe('downloadVerified and prepareTarballs (loopback HTTP server)', () => {
  const body = Buffer.alloc(300_000, 7)
  const digest = sha(body)
  let server: http.Server
  let base = ''
  const hits: string[] = []
  const dir = mkdtempSync(join(tmpdir(), 'kflan-dl-unit-'))

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const p = req.url ?? '/'
      hits.push(p)
      switch (p) {
        case '/boom': {
          res.writeHead(503).end()
          break
        }

        case '/file.tar.gz': {
          res.writeHead(200, {'content-length': body.length}).end(body)
          break
        }

        case '/ftp': {
          res.writeHead(302, {location: 'ftp://example.invalid/x'}).end()
          break
        }

        case '/idle': {
          res.writeHead(200, {'content-length': body.length}).write(body.subarray(0, 10))
          break
        }

        case '/loop': {
          res.writeHead(302, {location: '/loop'}).end()
          break
        }

        case '/moved': {
          res.writeHead(301, {location: '/file.tar.gz'}).end()
          break
        }

        case '/short': {
          res.writeHead(200, {'content-length': body.length}).write(body.subarray(0, 1000), () => res.socket?.destroy())
          break
        }

        default: {
          res.writeHead(404).end()
        }
      }
    })
    await new Promise<void>((r) => {
      server.listen(0, '127.0.0.1', r)
    })
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((r) => {
      server.close(r)
    })
  })

  const dest = (name: string, d = digest) => join(dir, name, `sha256-${d}`, 'file.tar.gz')
  const leftovers = (file: string) => (existsSync(dirname(file)) ? readdirSync(dirname(file)) : [])

  it('downloads, follows a redirect, and renames into place only once verified', async () => {
    const progress: number[] = []
    const d = dest('ok')
    const r = await downloadVerified(new URL(`${base}/moved`), digest, d, {onProgress: (n) => progress.push(n)})
    expect(r).toMatchObject({bytes: body.length, finalUrl: `${base}/file.tar.gz`})
    expect(progress.at(-1)).toBe(body.length)
    expect(leftovers(d)).toEqual(['file.tar.gz'])
  })

  it('a wrong digest: DigestMismatchError (exit 2) naming the URL and both digests; nothing left behind', async () => {
    const d = dest('wrong', A)
    const err = await downloadVerified(new URL(`${base}/file.tar.gz`), A, d, {field: 'etcd.tarball'}).catch(
      (error) => error,
    )
    expect(err).toBeInstanceOf(DigestMismatchError)
    expect(err.exitCode).toBe(2)
    expect(err.message).toBe(
      `etcd.tarball ${base}/file.tar.gz: sha256 mismatch\n  expected: ${A} (etcd.sha256)\n  actual:   ${digest}`,
    )
    expect(existsSync(dirname(d))).toBe(false)
  })

  it('a body cut short, an idle server, a redirect loop, a non-http redirect, HTTP errors, a refused connection', async () => {
    const get = (p: string, idleTimeoutMs?: number) =>
      downloadVerified(new URL(`${base}${p}`), digest, dest(p.slice(1)), {idleTimeoutMs}).catch((error) => error)
    const short = await get('/short')
    expect(short).toBeInstanceOf(DownloadError)
    expect(short.message).toMatch(
      /connection to 127\.0\.0\.1:\d+ lost during the download|the server sent 1000 of 300000 bytes/,
    )
    expect(short.hint).toMatch(/a partial file is never used/)
    expect(leftovers(dest('short'))).toEqual([])
    const idle = await get('/idle', 300)
    expect(idle.message).toMatch(/no data from 127\.0\.0\.1:\d+ for 0\.3 s/)
    expect(leftovers(dest('idle'))).toEqual([])
    expect((await get('/loop')).message).toMatch(/more than 5 redirects/)
    expect((await get('/ftp')).message).toMatch(/redirected to an unsupported URL ftp:/)
    const missing = await get('/nope')
    expect(missing).toBeInstanceOf(InputError)
    expect(missing.message).toMatch(/HTTP 404 Not Found/)
    const boom = await get('/boom')
    expect(boom.exitCode).toBe(1)
    expect(boom.message).toMatch(/HTTP 503 Service Unavailable/)
    // A port nothing listens on: the server's own, once closed, is not free for sure; port 1 is.
    const refused = await downloadVerified(new URL('http://127.0.0.1:1/x.tgz'), digest, dest('refused')).catch(
      (error) => error,
    )
    expect(refused.message).toMatch(/cannot connect to 127\.0\.0\.1:1 \(ECONNREFUSED\)/)
  })

  it('removes only part files older than a day', async () => {
    const d = join(dir, 'stale')
    await downloadVerified(new URL(`${base}/file.tar.gz`), digest, join(d, 'file.tar.gz'))
    writeFileSync(join(d, '.file.tar.gz.part-1-abcd'), 'x')
    await removeStalePartials(d, Date.now() + 2 * 86_400_000)
    expect(readdirSync(d)).toEqual(['file.tar.gz'])
  })

  it('prepareTarballs: downloads once, then reuses the cache; --offline needs the cache; local digests are checked', async () => {
    const local = join(dir, 'flannel.tgz')
    writeFileSync(local, 'flannel bytes')
    const inv = (etcdSha: string, flannelSha?: string) =>
      clusterFrom(
        minimalInventory()
          .replace('tarball: etcd.tgz', `tarball: ${base}/file.tar.gz\n  sha256: ${etcdSha}`)
          .replace('tarball: flannel.tgz', `tarball: ${local}${flannelSha ? `\n  sha256: ${flannelSha}` : ''}`),
      )
    const cache = join(dir, 'cache')
    const offline = await prepareTarballs(inv(digest), {offline: true, cacheDir: cache, output: 'silent'}).catch(
      (error) => error,
    )
    expect(offline).toBeInstanceOf(InputError)
    expect(offline.message).toMatch(/etcd\.tarball .*: not in the download cache .* and --offline forbids downloading/)
    const before = hits.length
    const first = await prepareTarballs(inv(digest), {offline: false, cacheDir: cache, output: 'silent'})
    expect(first.tarballs.map((t) => t.action)).toEqual(['downloaded', 'local'])
    expect(first.cluster.etcd.tarball).toBe(join(cache, 'tarballs', `sha256-${digest}`, 'file.tar.gz'))
    expect(first.cluster.flannel.tarball).toBe(local)
    expect(hits.length).toBe(before + 1)
    const again = await prepareTarballs(inv(digest, sha('flannel bytes')), {
      offline: true,
      cacheDir: cache,
      output: 'silent',
    })
    expect(again.tarballs.map((t) => t.action)).toEqual(['cached', 'local-verified'])
    expect(hits.length).toBe(before + 1)
    // A cached file that no longer matches is not used: removed and downloaded again.
    writeFileSync(first.cluster.etcd.tarball, 'tampered')
    const notes: string[] = []
    const healed = await prepareTarballs(inv(digest), {
      offline: false,
      cacheDir: cache,
      output: 'silent',
      note: (m) => notes.push(m),
    })
    expect(healed.tarballs[0].action).toBe('downloaded')
    expect(notes[0]).toMatch(/no longer matches sha256 .*: removed, downloading again/)
    expect(hits.length).toBe(before + 2)
    const bad = await prepareTarballs(inv(digest, B), {offline: true, cacheDir: cache, output: 'silent'}).catch(
      (error) => error,
    )
    expect(bad).toBeInstanceOf(DigestMismatchError)
    expect(bad.message).toBe(
      `flannel.tarball ${local}: sha256 mismatch\n  expected: ${B} (flannel.sha256)\n  actual:   ${sha('flannel bytes')}`,
    )
  })
})
