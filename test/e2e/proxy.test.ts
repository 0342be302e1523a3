/**
 * URL tarballs through a real HTTP proxy: Debian's tinyproxy (scripts/setup.sh installs it),
 * started by this test on a free loopback port with its own config file and log, stopped by PID,
 * in front of the loopback HTTPS/HTTP file servers of the download tests (loopback-server.ts,
 * certificates from a throwaway CA trusted through NODE_EXTRA_CA_CERTS). The built kflan runs
 * with HTTPS_PROXY / HTTP_PROXY / NO_PROXY set as an operator behind a corporate proxy would.
 *
 * No lab hosts: each run is stopped right after its tarballs, before any host, by a --state-dir
 * that cannot be created (a path under a regular file: exit 2, "state directory"). Downloads come
 * before the state directory in init (src/commands/init.ts), so a run that gets that far has
 * downloaded and verified both tarballs, and its stdout says how ("through proxy …").
 */
/* eslint-disable camelcase -- http_proxy, https_proxy, no_proxy: spelled as curl reads them */
import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import net, {type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {kflan} from './kflan-helpers.js'
import {run} from './lab-helpers.js'
import {FileServer, type Served, sha256, throwawayCa} from './loopback-server.js'

const TINYPROXY = '/usr/bin/tinyproxy'

/** A port on 127.0.0.1 that nothing listens on right now. */
async function freePort(): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>((resolve) => {
    srv.listen(0, '127.0.0.1', resolve)
  })
  const {port} = srv.address() as AddressInfo
  await new Promise<void>((resolve) => {
    srv.close(() => resolve())
  })
  return port
}

/** A tinyproxy process of this test: its own config, log and port; stopped by its PID. */
class Tinyproxy {
  port = 0
  private child?: ChildProcess
  private readonly logFile: string

  constructor(
    private readonly dir: string,
    private readonly auth?: {user: string; pass: string},
  ) {
    mkdirSync(dir, {recursive: true})
    this.logFile = join(dir, 'tinyproxy.log')
  }

  async start(): Promise<void> {
    this.port = await freePort()
    const conf = join(this.dir, 'tinyproxy.conf')
    // No ConnectPort line: CONNECT to any port (the file server's is random). LogLevel Connect
    // logs every request line, CONNECT host:port included.
    writeFileSync(
      conf,
      [
        `Port ${this.port}`,
        'Listen 127.0.0.1',
        'Timeout 30',
        `LogFile "${this.logFile}"`,
        'LogLevel Connect',
        'MaxClients 20',
        'Allow 127.0.0.1',
        'DisableViaHeader Yes',
        ...(this.auth ? [`BasicAuth ${this.auth.user} ${this.auth.pass}`] : []),
        '',
      ].join('\n'),
      {mode: 0o600},
    )
    const version = (await run(TINYPROXY, ['-v'])).stdout.trim()
    // -d: stay in the foreground, so the PID is the proxy's own.
    this.child = spawn(TINYPROXY, ['-d', '-c', conf], {stdio: 'ignore'})
    for (let i = 0; ; i++) {
      if (this.child.exitCode !== null)
        throw new Error(`tinyproxy exited (${this.child.exitCode}); its log:\n${this.log()}`)
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1', () => {
          s.destroy()
          resolve(true)
        })
        s.on('error', () => resolve(false))
      })
      if (up) break
      if (i > 100) throw new Error(`tinyproxy did not listen on 127.0.0.1:${this.port} within 10 s`)
      await sleep(100)
    }

    console.log(`${version} (pid ${this.child.pid}) on 127.0.0.1:${this.port}${this.auth ? ', BasicAuth' : ''}`)
  }

  url(creds = ''): string {
    return `http://${creds ? `${creds}@` : ''}127.0.0.1:${this.port}`
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : ''
  }

  /** The request lines tinyproxy logged after `from` characters of its log (`CONNECT 127.0.0.1:443 HTTP/1.1`). */
  requests(from = 0): string[] {
    return [
      ...this.log()
        .slice(from)
        .matchAll(/: Request \(file descriptor \d+\): (.*)$/gm),
    ].map((m) => m[1])
  }

  async stop(): Promise<void> {
    const c = this.child
    if (!c || c.exitCode !== null || c.pid === undefined) return
    const exited = new Promise((resolve) => {
      c.once('exit', resolve)
    })
    process.kill(c.pid, 'SIGTERM')
    await exited
  }
}

/** Every proxy variable empty, so that the runner's own environment cannot leak into a run. */
const NO_PROXY_ENV = Object.fromEntries(
  ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'].map(
    (v) => [v, ''],
  ),
)

describe('URL tarballs through an HTTP proxy (tinyproxy on loopback, the built kflan)', () => {
  const work = mkdtempSync(join(tmpdir(), 'kflan-proxy-'))
  const user = 'kflan'
  const pass = `pw-${randomBytes(9).toString('hex')}`
  const basic = Buffer.from(`${user}:${pass}`).toString('base64')
  let ca: string
  let files: Served[]
  let tls: FileServer
  let plain: FileServer
  let redirector: http.Server
  let redirectorPort = 0
  let proxy: Tinyproxy
  let authProxy: Tinyproxy
  let identity: string
  let n = 0

  beforeAll(async () => {
    if (!existsSync(TINYPROXY))
      throw new Error(
        `${TINYPROXY} not found: this test needs Debian's tinyproxy, which scripts/setup.sh installs (apt-get install tinyproxy)`,
      )
    const certs = await throwawayCa(work)
    ca = certs.ca
    // Two "release tarballs" (random bytes: nothing is installed, only downloaded and verified).
    files = ['etcd-v3.4.23-linux-amd64.tar.gz', 'flannel-v0.26.1-linux-amd64.tar.gz'].map((name) => {
      const data = randomBytes(2_000_000)
      return {name, data, sha256: sha256(data)}
    })
    tls = new FileServer(files, certs)
    plain = new FileServer(files)
    await tls.start()
    await plain.start()
    // A plain-http server that redirects /NAME to the https file server: the hop that follows is
    // decided again (NO_PROXY can exempt one and not the other).
    redirector = http.createServer((req, res) => {
      res.writeHead(302, {location: tls.url((req.url ?? '/').slice(1))}).end()
    })
    await new Promise<void>((resolve) => {
      redirector.listen(0, '127.0.0.1', resolve)
    })
    redirectorPort = (redirector.address() as AddressInfo).port
    proxy = new Tinyproxy(join(work, 'proxy'))
    authProxy = new Tinyproxy(join(work, 'auth-proxy'), {user, pass})
    await proxy.start()
    await authProxy.start()
    identity = join(work, 'id_ed25519')
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', identity])
  })

  afterAll(async () => {
    await proxy?.stop()
    await authProxy?.stop()
    await tls?.stop()
    await plain?.stop()
    redirector?.closeAllConnections()
    await new Promise<void>((resolve) => {
      if (redirector) redirector.close(() => resolve())
      else resolve()
    })
  })

  const [etcdName, flannelName] = ['etcd-v3.4.23-linux-amd64.tar.gz', 'flannel-v0.26.1-linux-amd64.tar.gz']
  const served = (name: string) => files.find((f) => f.name === name)!

  /** An inventory with both tarballs as URLs (hosts never contacted: see the file comment). */
  function inventory(etcdUrl: string, flannelUrl: string): string {
    const dir = join(work, `inv-${++n}`)
    mkdirSync(dir)
    const file = join(dir, 'inventory.yaml')
    writeFileSync(
      file,
      `cluster: proxied
ssh: {user: root, identityFile: ${identity}}
hosts:
  - {name: m1, address: 10.0.0.11}
  - {name: n1, address: 10.0.0.21}
roles: {masters: [m1], nodes: [n1]}
etcd:
  version: 3.4.23
  tarball: ${etcdUrl}
  sha256: ${served(etcdName).sha256}
flannel:
  version: 0.26.1
  tarball: ${flannelUrl}
  sha256: ${served(flannelName).sha256}
  network: 10.244.0.0/16
`,
    )
    return file
  }

  /** kflan init with a fresh cache, stopped after the tarballs by a state dir that cannot exist. */
  async function init(inv: string, env: NodeJS.ProcessEnv) {
    const root = join(work, `run-${++n}`)
    mkdirSync(root)
    writeFileSync(join(root, 'not-a-dir'), '')
    const cache = join(root, 'cache')
    const r = await kflan(['init', '-i', inv, '--state-dir', join(root, 'not-a-dir', 'state')], {
      env: {...NO_PROXY_ENV, HOME: root, XDG_CACHE_HOME: cache, NODE_EXTRA_CA_CERTS: ca, ...env},
    })
    const cached = existsSync(join(cache, 'kflan'))
      ? readdirSync(join(cache, 'kflan'), {recursive: true, withFileTypes: true})
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name))
      : []
    // Everything kflan wrote under its HOME and cache, for the "no credentials anywhere" checks.
    const written = readdirSync(root, {recursive: true, withFileTypes: true})
      .filter((e) => e.isFile())
      .map((e) => readFileSync(join(e.parentPath, e.name)).toString('latin1'))
      .join('\n')
    return {...r, out: `${r.stdout}\n${r.stderr}`, cached, written}
  }

  /** Both tarballs arrived and were verified: stdout's summary lines and the cache's bytes. */
  function expectDownloaded(r: Awaited<ReturnType<typeof init>>, via: string | undefined) {
    // The run ended at the state directory, after the tarballs.
    expect(r.code, r.out).toBe(2)
    expect(r.stderr).toMatch(/state directory/)
    for (const name of [etcdName, flannelName]) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`tarball: ${name} downloaded from `))
      expect(line, r.out).toBeDefined()
      if (via) expect(line).toContain(` through ${via} (`)
      else expect(line).not.toContain(' through ')
      const file = r.cached.find((f) => f.endsWith(`sha256-${served(name).sha256}/${name}`))
      expect(file, r.cached.join(' ')).toBeDefined()
      expect(sha256(readFileSync(file!))).toBe(served(name).sha256)
    }
  }

  it('HTTPS_PROXY: https downloads go through CONNECT (in the proxy log), the origin certificate still verified through the tunnel', async () => {
    const mark = proxy.log().length
    const before = tls.requests.length
    const r = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {HTTPS_PROXY: proxy.url()})
    expectDownloaded(r, `proxy ${proxy.url()} (from HTTPS_PROXY)`)
    expect(proxy.requests(mark)).toEqual([
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
    ])
    expect(tls.requests.slice(before).sort()).toEqual([`/${etcdName}`, `/${flannelName}`].sort())
    console.log(
      `through the proxy: ${r.stdout
        .split('\n')
        .filter((l) => l.startsWith('tarball: '))
        .join('; ')}`,
    )

    // Without the throwaway CA the origin is not trusted, proxy or not: TLS is end to end.
    const untrusted = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      HTTPS_PROXY: proxy.url(),
      NODE_EXTRA_CA_CERTS: '',
    })
    expect(untrusted.code, untrusted.out).toBe(1)
    expect(untrusted.stderr).toMatch(
      new RegExp(
        `TLS certificate of 127\\.0\\.0\\.1:${tls.port} not trusted \\(.*\\) \\(through proxy http://127\\.0\\.0\\.1:${proxy.port} \\(from HTTPS_PROXY\\)\\)`,
      ),
    )
    expect(untrusted.stderr).toMatch(/hint: .*NODE_EXTRA_CA_CERTS/)
    expect(untrusted.cached).toEqual([])

    // A trusted certificate for another name is refused through the tunnel too: the certificate
    // is for IP 127.0.0.1, the URL says localhost.
    const other = await init(
      inventory(`https://localhost:${tls.port}/${etcdName}`, `https://localhost:${tls.port}/${flannelName}`),
      {HTTPS_PROXY: proxy.url()},
    )
    expect(other.code, other.out).toBe(1)
    expect(other.stderr).toMatch(
      new RegExp(
        `TLS certificate of localhost:${tls.port} not trusted \\(ERR_TLS_CERT_ALTNAME_INVALID\\) \\(through proxy`,
      ),
    )
    expect(other.cached).toEqual([])
  })

  it('http_proxy (lower case) for http URLs: the proxy gets the absolute-URI GETs', async () => {
    const mark = proxy.log().length
    const r = await init(inventory(plain.url(etcdName), plain.url(flannelName)), {http_proxy: proxy.url()})
    expectDownloaded(r, `proxy ${proxy.url()} (from http_proxy)`)
    expect(proxy.requests(mark).sort()).toEqual(
      [`GET ${plain.url(etcdName)} HTTP/1.1`, `GET ${plain.url(flannelName)} HTTP/1.1`].sort(),
    )
  })

  it('NO_PROXY bypasses the proxy (its log shows nothing); a redirect decides its proxy again', async () => {
    let mark = proxy.log().length
    const r = await init(inventory(tls.url(etcdName), plain.url(flannelName)), {
      HTTPS_PROXY: proxy.url(),
      HTTP_PROXY: proxy.url(),
      NO_PROXY: 'localhost,127.0.0.1',
    })
    expectDownloaded(r, undefined)
    expect(proxy.log().slice(mark)).toBe('')

    // http://127.0.0.1:R/NAME (exempt by host:port) redirects to https://127.0.0.1:T/NAME (not exempt).
    mark = proxy.log().length
    const redirected = `http://127.0.0.1:${redirectorPort}`
    const hop = await init(inventory(`${redirected}/${etcdName}`, `${redirected}/${flannelName}`), {
      HTTPS_PROXY: proxy.url(),
      HTTP_PROXY: proxy.url(),
      NO_PROXY: `127.0.0.1:${redirectorPort}`,
    })
    expectDownloaded(hop, `proxy ${proxy.url()} (from HTTPS_PROXY)`)
    expect(proxy.requests(mark)).toEqual([
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
    ])
  })

  it('a dead proxy: exit 1, the proxy and its variable named (no credentials), a hint; nothing cached', async () => {
    const dead = await freePort()
    const r = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      HTTPS_PROXY: `http://${user}:${pass}@127.0.0.1:${dead}`,
    })
    expect(r.code, r.out).toBe(1)
    expect(r.stderr).toContain(
      `etcd.tarball ${tls.url(etcdName)}: proxy http://127.0.0.1:${dead} (from HTTPS_PROXY): cannot connect to 127.0.0.1:${dead} (ECONNREFUSED)`,
    )
    expect(r.stderr).toMatch(
      new RegExp(
        `hint: check HTTPS_PROXY \\(the proxy's host and port, and that it is running\\); to reach 127\\.0\\.0\\.1:${tls.port} without a proxy, add 127\\.0\\.0\\.1 to NO_PROXY`,
      ),
    )
    expect(r.out).not.toContain(pass)
    expect(r.out).not.toContain(`${user}:`)
    expect(r.cached).toEqual([])
  })

  it('an authenticated proxy (BasicAuth): user:pass in the URL works, the password appears nowhere; without credentials a 407 error, with wrong ones a 401, each with a hint', async () => {
    const mark = authProxy.log().length
    const r = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      HTTPS_PROXY: authProxy.url(`${user}:${pass}`),
    })
    expectDownloaded(r, `proxy ${authProxy.url()} (from HTTPS_PROXY)`)
    expect(authProxy.requests(mark)).toEqual([
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
      `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
    ])
    for (const secret of [pass, basic]) {
      expect(r.out).not.toContain(secret)
      expect(r.written).not.toContain(secret)
    }

    const none = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {HTTPS_PROXY: authProxy.url()})
    expect(none.code, none.out).toBe(1)
    expect(none.stderr).toContain(
      `etcd.tarball ${tls.url(etcdName)}: proxy ${authProxy.url()} (from HTTPS_PROXY) answered HTTP 407 Proxy Authentication Required to CONNECT 127.0.0.1:${tls.port}`,
    )
    expect(none.stderr).toMatch(
      /hint: the proxy wants credentials: set HTTPS_PROXY to http:\/\/user:password@host:port/,
    )
    expect(none.cached).toEqual([])

    const wrong = `wrong-${randomBytes(6).toString('hex')}`
    const bad = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      https_proxy: authProxy.url(`${user}:${wrong}`),
    })
    expect(bad.code, bad.out).toBe(1)
    // tinyproxy 1.11 answers wrong credentials with 401 (407 only when there are none).
    expect(bad.stderr).toContain(
      `proxy ${authProxy.url()} (from https_proxy) answered HTTP 401 Unauthorized to CONNECT 127.0.0.1:${tls.port}`,
    )
    expect(bad.stderr).toMatch(/hint: the proxy refused the credentials in https_proxy/)
    expect(bad.out).not.toContain(wrong)
  })

  it('an invalid proxy URL in the environment is an input error (exit 2) naming the variable; nothing is downloaded', async () => {
    const before = tls.requests.length
    const r = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      https_proxy: `socks5://${user}:${pass}@127.0.0.1:1080`,
    })
    expect(r.code, r.out).toBe(2)
    expect(r.stderr).toContain(
      'https_proxy=socks5://127.0.0.1:1080: proxy scheme socks5:// is not supported (kflan speaks to http:// and https:// proxies)',
    )
    expect(r.stderr).toMatch(/hint: set https_proxy to an http:\/\/ or https:\/\/ proxy URL/)
    expect(r.out).not.toContain(pass)
    const unparsable = await init(inventory(tls.url(etcdName), tls.url(flannelName)), {
      HTTPS_PROXY: `http://${user}:${pass}@127.0.0.1:99999`,
    })
    expect(unparsable.code, unparsable.out).toBe(2)
    expect(unparsable.stderr).toContain('HTTPS_PROXY=http://***@127.0.0.1:99999: not a valid proxy URL')
    expect(unparsable.out).not.toContain(pass)
    expect(tls.requests.length).toBe(before)
  })
})
