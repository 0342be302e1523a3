/**
 * URL tarballs end to end: kflan init against real lab hosts, with the lab's release bundles
 * served over HTTPS (a throwaway CA made with openssl, trusted by the kflan process through
 * NODE_EXTRA_CA_CERTS) and plain HTTP by servers this test starts on loopback. The servers count
 * requests, so "downloads nothing" is a count, and one of them can die mid-transfer.
 *
 * Also the inventory rule for local files: validate warns (exit 0), init refuses (exit 2) before
 * contacting any host.
 */
import {copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {kflan, labInventory, tempStateDir} from './kflan-helpers.js'
import {LAB, labDown, labUp, requireLab, sshExec} from './lab-helpers.js'
import {FileServer, type Served, sha256, throwawayCa} from './loopback-server.js'

/** The lab inventory with both tarballs replaced by URLs and digests. */
function urlInventory(etcd: {url: string; sha256: string}, flannel: {url: string; sha256: string}): string {
  return labInventory((t) =>
    t
      .replace(/^( {2}tarball: ).*etcd-v.*$/m, `$1${etcd.url}\n  sha256: ${etcd.sha256}`)
      .replace(/^( {2}tarball: ).*flannel-v.*$/m, `$1${flannel.url}\n  sha256: ${flannel.sha256}`),
  )
}

/** Files under the download cache, part files included. */
function cacheFiles(cache: string): string[] {
  const root = join(cache, 'kflan', 'tarballs')
  if (!existsSync(root)) return []
  return readdirSync(root, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort()
}

/** True when kflan has left no trace on the lab hosts (nothing installed, nothing cached). */
async function hostsUntouched(): Promise<string> {
  const out: string[] = []
  for (const h of ['lab-m1', 'lab-n1']) {
    const r = await sshExec(
      h,
      'for p in /opt/etcd /opt/flannel /var/lib/kflan /etc/systemd/system/etcd.service /etc/systemd/system/flanneld.service; do [ -e $p ] && echo $p; done; true',
    )
    out.push(
      ...r.stdout
        .split('\n')
        .filter(Boolean)
        .map((p) => `${h}:${p}`),
    )
  }

  return out.join(' ')
}

describe('inventory files: validate warns, init refuses before contacting any host', () => {
  it('every inventory under inventories/ validates with exit 0 when its tarballs and key do not exist', async () => {
    const home = mkdtempSync(join(tmpdir(), 'kflan-home-')) // no ~/.ssh/id_ed25519 here
    const dir = join(LAB.repo, 'inventories')
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml'))) {
      const r = await kflan(['validate', '-i', join(dir, f)], {env: {HOME: home}})
      expect(r.code, `${f}:\n${r.stderr}`).toBe(0)
      expect(r.stderr).toMatch(
        new RegExp(`${f}:\\d+:\\d+: warning: ssh\\.identityFile: identity file not found: ${home}/\\.ssh/id_ed25519`),
      )
      expect(r.stderr).toMatch(new RegExp(`${f}:\\d+:\\d+: warning: etcd\\.tarball: file not found: .*/bundles/etcd-v`))
      expect(r.stderr).toMatch(/hint: .*kflan init and join refuse to start without it/)
    }
  })
})

describe.skipIf(!requireLab())(
  'kflan init with tarball URLs (https and http, loopback servers, real lab hosts)',
  () => {
    const work = mkdtempSync(join(tmpdir(), 'kflan-dl-'))
    const state = tempStateDir()
    const cache = join(work, 'cache')
    let files: Served[]
    let etcd: Served
    let flannel: Served
    let ca: string
    let tls: FileServer
    let plain: FileServer
    const env = () => ({XDG_CACHE_HOME: cache, NODE_EXTRA_CA_CERTS: ca})

    beforeAll(async () => {
      await labUp({masters: 1, nodes: 1})
      // Copies of the lab's bundles as they are now (another run may rebuild the shared cache).
      const inv = readFileSync(LAB.inventory, 'utf8')
      files = [...inv.matchAll(/^ {2}tarball: (.*)$/gm)].map((m) => {
        const local = join(work, basename(m[1]))
        copyFileSync(m[1], local)
        const data = readFileSync(local)
        return {name: basename(m[1]), data, sha256: sha256(data)}
      })
      etcd = files.find((f) => f.name.startsWith('etcd-'))!
      flannel = files.find((f) => f.name.startsWith('flannel-'))!
      console.log(
        `serving ${files.map((f) => `${f.name} (${f.data.length} bytes, sha256 ${f.sha256.slice(0, 12)}…)`).join(', ')}`,
      )
      const certs = await throwawayCa(work)
      ca = certs.ca
      tls = new FileServer(files, certs)
      plain = new FileServer(files)
      await tls.start()
      await plain.start()
    })
    afterAll(async () => {
      await tls?.stop()
      await plain?.stop()
      await labDown()
    })

    it('refuses an identity file that does not exist (exit 2) before contacting any host', async () => {
      const inv = labInventory((t) => t.replace(/identityFile: .*/, `identityFile: ${work}/no-such-key`))
      const s = tempStateDir()
      const r = await kflan(['init', '-i', inv, '--state-dir', s], {env: env()})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(
        /inventory\.yaml:\d+:\d+: error: ssh\.identityFile: identity file not found: .*no-such-key/,
      )
      expect(existsSync(join(s, 'known_hosts'))).toBe(false)
      expect(existsSync(join(s, 'logs'))).toBe(false)
      expect(tls.requests).toEqual([])
    })

    it('--offline with an empty cache is refused (exit 2) with a hint, and nothing is downloaded', async () => {
      const inv = urlInventory(
        {url: tls.url(etcd.name), sha256: etcd.sha256},
        {url: tls.url(flannel.name), sha256: flannel.sha256},
      )
      const r = await kflan(['init', '-i', inv, '--state-dir', state, '--offline'], {env: env()})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(`etcd.tarball ${tls.url(etcd.name)}: not in the download cache`)
      expect(r.stderr).toMatch(/--offline forbids downloading\n {2}hint: run once without --offline/)
      // join node takes the same flag (it needs the flannel tarball only).
      const joined = await kflan(['join', 'node', 'lab-n1', '-i', inv, '--state-dir', state, '--offline'], {env: env()})
      expect(joined.code, joined.stderr).toBe(2)
      expect(joined.stderr).toContain(`flannel.tarball ${tls.url(flannel.name)}: not in the download cache`)
      expect(tls.requests).toEqual([])
      expect(existsSync(join(state, 'known_hosts'))).toBe(false)
    })

    it('without the CA in NODE_EXTRA_CA_CERTS, the https server is not trusted (exit 1, hint names the variable)', async () => {
      const inv = urlInventory(
        {url: tls.url(etcd.name), sha256: etcd.sha256},
        {url: tls.url(flannel.name), sha256: flannel.sha256},
      )
      const r = await kflan(['init', '-i', inv, '--state-dir', state], {
        env: {XDG_CACHE_HOME: cache, NODE_EXTRA_CA_CERTS: ''},
      })
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(/TLS certificate of 127\.0\.0\.1:\d+ not trusted/)
      expect(r.stderr).toMatch(/hint: .*NODE_EXTRA_CA_CERTS/)
      expect(cacheFiles(cache)).toEqual([])
    })

    it('a wrong digest is refused (exit 2) with both digests shown; nothing is cached or installed', async () => {
      const wrong = sha256(Buffer.from('not the etcd release'))
      const inv = urlInventory(
        {url: tls.url(etcd.name), sha256: wrong},
        {url: tls.url(flannel.name), sha256: flannel.sha256},
      )
      const r = await kflan(['init', '-i', inv, '--state-dir', state], {env: env()})
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(`etcd.tarball ${tls.url(etcd.name)}: sha256 mismatch`)
      expect(r.stderr).toContain(`expected: ${wrong} (etcd.sha256)`)
      expect(r.stderr).toContain(`actual:   ${etcd.sha256}`)
      expect(r.stderr).toMatch(/nothing was installed on any host/)
      expect(tls.count(etcd.name)).toBe(1)
      expect(cacheFiles(cache)).toEqual([])
      expect(existsSync(join(state, 'known_hosts'))).toBe(false)
      expect(await hostsUntouched()).toBe('')
    })

    it('a slow server shows progress lines (non-TTY); one that dies mid-download fails the run (exit 1) and leaves no partial file', async () => {
      const before = tls.count(etcd.name)
      // Half the file at a rate that takes about 7 s: progress lines every 5 s in a log.
      const half = Math.floor(etcd.data.length / 2)
      tls.dieAfter.set(`/${etcd.name}`, half)
      tls.rate = Math.ceil(half / 7)
      const inv = urlInventory(
        {url: tls.url(etcd.name), sha256: etcd.sha256},
        {url: tls.url(flannel.name), sha256: flannel.sha256},
      )
      const r = await kflan(['init', '-i', inv, '--state-dir', state], {env: env()})
      tls.dieAfter.clear()
      tls.rate = 0
      expect(r.stdout).toMatch(
        new RegExp(
          `❯ download ${etcd.name.replaceAll(/[.]/g, String.raw`\.`)} from 127\\.0\\.0\\.1:\\d+\n› [\\d.]+ (kB|MB)? ?of ${(etcd.data.length / 1e6).toFixed(1)} MB \\(\\d+%\\), [\\d.]+ MB/s`,
        ),
      )
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(
        new RegExp(
          `etcd\\.tarball ${tls.url(etcd.name).replaceAll(/[.]/g, String.raw`\.`)}: (connection to 127\\.0\\.0\\.1:\\d+ lost during the download|the server sent \\d+ of ${etcd.data.length} bytes)`,
        ),
      )
      expect(r.stderr).toMatch(/a partial file is never used/)
      expect(tls.count(etcd.name)).toBe(before + 1)
      expect(cacheFiles(cache)).toEqual([])
      expect(await hostsUntouched()).toBe('')
    })

    it('the right digests install (init converges), following a redirect; the next run downloads nothing', async () => {
      const inv = urlInventory(
        {url: tls.url(etcd.name, true), sha256: etcd.sha256},
        {url: tls.url(flannel.name), sha256: flannel.sha256},
      )
      const before = {etcd: tls.count(etcd.name), flannel: tls.count(flannel.name)}
      const t0 = Date.now()
      const r = await kflan(['init', '-i', inv, '--state-dir', state], {env: env()})
      const firstMs = Date.now() - t0
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      expect(tls.count(etcd.name)).toBe(before.etcd + 1)
      expect(tls.count(flannel.name)).toBe(before.flannel + 1)
      const downloaded = r.stdout.split('\n').filter((l) => l.startsWith('tarball: '))
      expect(downloaded).toEqual([
        expect.stringMatching(
          new RegExp(
            `^tarball: ${etcd.name} downloaded from ${tls.url(etcd.name, true).replaceAll(/[.]/g, String.raw`\.`)} \\(.* MB/s, sha256 ok\\)$`,
          ),
        ),
        expect.stringMatching(new RegExp(`^tarball: ${flannel.name} downloaded from .*sha256 ok\\)$`)),
      ])
      expect(cacheFiles(cache)).toEqual(
        [`sha256-${etcd.sha256}/${etcd.name}`, `sha256-${flannel.sha256}/${flannel.name}`].sort(),
      )
      // What arrived on the hosts is the served release.
      const installed = await sshExec('lab-m1', '/opt/etcd/bin/etcd --version | head -1; systemctl is-active etcd')
      expect(installed.stdout).toMatch(/etcd Version: \S+\nactive/)
      const fl = await sshExec(
        'lab-n1',
        'systemctl is-active flanneld; /opt/flannel/bin/flanneld --version 2>&1 | head -1',
      )
      expect(fl.stdout).toMatch(/^active\n/)
      console.log(`ran against: ${installed.stdout.split('\n')[0]}; flanneld ${fl.stdout.split('\n')[1]}`)
      console.log(`first init with downloads: ${(firstMs / 1000).toFixed(1)} s; ${downloaded.join('; ')}`)

      const requests = tls.requests.length
      const t1 = Date.now()
      const again = await kflan(['init', '-i', inv, '--state-dir', state], {env: env()})
      const againMs = Date.now() - t1
      expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0)
      expect(tls.requests.length).toBe(requests)
      expect(again.stdout).toContain(
        `tarball: ${etcd.name} from the download cache (${join(cache, 'kflan', 'tarballs', `sha256-${etcd.sha256}`, etcd.name)}), sha256 ok`,
      )
      // And --offline is satisfied by the cache.
      const offline = await kflan(['init', '-i', inv, '--state-dir', state, '--offline'], {env: env()})
      expect(offline.code, offline.stderr).toBe(0)
      expect(tls.requests.length).toBe(requests)
      console.log(`repeat init, tarballs from the cache: ${(againMs / 1000).toFixed(1)} s, 0 requests`)
    })

    it('plain http:// works the same (the sha256 is what makes it safe)', async () => {
      const fresh = join(work, 'cache-http')
      const inv = urlInventory(
        {url: plain.url(etcd.name), sha256: etcd.sha256},
        {url: plain.url(flannel.name), sha256: flannel.sha256},
      )
      const r = await kflan(['init', '-i', inv, '--state-dir', state], {env: {XDG_CACHE_HOME: fresh}})
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      expect(plain.requests.sort()).toEqual([`/${etcd.name}`, `/${flannel.name}`].sort())
      expect(r.stdout).toMatch(new RegExp(`tarball: ${etcd.name} downloaded from http://127\\.0\\.0\\.1:\\d+/`))
      expect(cacheFiles(fresh)).toEqual(
        [`sha256-${etcd.sha256}/${etcd.name}`, `sha256-${flannel.sha256}/${flannel.name}`].sort(),
      )
      // A wrong digest over http is refused the same way.
      const wrong = flannel.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'))
      const bad = urlInventory(
        {url: plain.url(etcd.name), sha256: etcd.sha256},
        {url: plain.url(flannel.name), sha256: wrong},
      )
      const refused = await kflan(['init', '-i', bad, '--state-dir', state], {env: {XDG_CACHE_HOME: fresh}})
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain(`expected: ${wrong} (flannel.sha256)`)
      expect(refused.stderr).toContain(`actual:   ${flannel.sha256}`)
    })
  },
)
