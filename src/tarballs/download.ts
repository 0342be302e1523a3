/**
 * Downloading one file over http(s) into place, verified: the bytes go to a temp file next to the
 * destination while their sha256 is computed, and the temp file is renamed to the destination
 * only when the digest is the expected one. A partial, interrupted or wrong download is deleted
 * and never seen under the destination's name.
 *
 * node:http/https: certificates are verified with Node's trust store, to which NODE_EXTRA_CA_CERTS
 * adds a private CA. HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured as curl does (./proxy.ts),
 * decided again for every redirect; through a proxy the origin's certificate is verified the same. Redirects are followed (at most MAX_REDIRECTS, http and
 * https alike: the digest, not the transport, is what makes the file safe). A connection that
 * sends nothing for `idleTimeoutMs` (while connecting or during the body) is abandoned.
 */
import {createHash, randomBytes} from 'node:crypto'
import {createWriteStream, promises as fsp} from 'node:fs'
import http, {type IncomingMessage} from 'node:http'
import https from 'node:https'
import {basename, dirname, join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {checkServerIdentity, type PeerCertificate} from 'node:tls'

import {InputError} from '../errors.js'
import {describeNetworkError, DigestMismatchError, DownloadError} from './errors.js'
import {describeProxy, proxyAgent, type ProxyChoice, proxyFor} from './proxy.js'

export const MAX_REDIRECTS = 5
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000

export interface DownloadOptions {
  /** Called as bytes arrive (received so far, Content-Length when the server sent one). */
  onProgress?: (received: number, total: number | undefined) => void
  idleTimeoutMs?: number
  /** Names the inventory field in messages, e.g. `etcd.tarball`. */
  field?: string
}

export interface DownloadResult {
  bytes: number
  ms: number
  /** The URL the bytes came from, after redirects. */
  finalUrl: string
  /** The proxy of the last hop, as `proxy http://host:port (from HTTPS_PROXY)` (never with credentials). */
  via?: string
}

/** The URL's host name as TLS checks it (an IPv6 address without its brackets). */
const unbracketed = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1')

/** What a message names first: the inventory field and the URL it gives. */
interface What {
  field: string
  source: string
}

/** An IncomingMessage plus what the proxy said to CONNECT (https through a proxy only). */
interface Answer {
  res: IncomingMessage
  connectStatus?: number
}

/** One GET of `current`, directly or through `proxy`. */
function get(current: URL, proxy: ProxyChoice | undefined, idleTimeoutMs: number, what: What) {
  return new Promise<Answer>((resolve, reject) => {
    const mod = current.protocol === 'https:' ? https : http
    // agent: false, one connection per request: nothing is kept open after the download. A proxy
    // agent is made per request too (keepAlive off) and destroyed with it.
    const agent = proxy ? proxyAgent(proxy, current) : false
    let response: IncomingMessage | undefined
    let connectStatus: number | undefined
    let reached = !proxy
    const idle = () => Object.assign(new Error(`${idleTimeoutMs / 1000} s`), {code: 'KFLAN_IDLE'})
    // The socket's idle timeout starts once the agent hands the socket over; until then (connecting
    // to the proxy and waiting for its answer to CONNECT) this timer does the same job.
    const watchdog = proxy ? setTimeout(() => req.destroy(idle()), idleTimeoutMs) : undefined
    const req = mod.get(
      current,
      {
        agent,
        headers: {'user-agent': 'kflan', 'accept-encoding': 'identity'},
        timeout: idleTimeoutMs,
        // Through a tunnel, https-proxy-agent upgrades the socket to TLS without the origin's host
        // (it sets only a servername, and none for an IP address), so Node would check the
        // certificate against "localhost". The origin's own name is checked instead: the same
        // check as a direct connection, not a weaker one.
        ...(agent && current.protocol === 'https:'
          ? {checkServerIdentity: (_: string, cert: PeerCertificate) => checkServerIdentity(unbracketed(current), cert)}
          : {}),
      },
      (r) => {
        response = r
        resolve({res: r, connectStatus})
      },
    )
    req.once('socket', () => clearTimeout(watchdog))
    req.once('close', () => {
      clearTimeout(watchdog)
      if (agent) agent.destroy()
    })
    // Both proxy agents emit it once the proxy is connected (https-proxy-agent: with the status of its answer to CONNECT).
    req.on('proxyConnect', (c: {statusCode?: number}) => {
      reached = true
      connectStatus = c.statusCode
    })
    // The socket's idle timeout covers connecting, waiting for the headers and the body.
    req.on('timeout', () => {
      if (response) response.destroy(idle())
      else req.destroy(idle())
    })
    req.on('error', (e) => reject(failure(e as NodeJS.ErrnoException, current, what, proxy && {proxy, reached})))
  })
}

/** ` (through proxy http://… (from HTTPS_PROXY))` when there is a proxy. */
const through = (proxy: ProxyChoice | undefined) => (proxy ? ` (through ${describeProxy(proxy)})` : '')

/** One GET, following redirects (each hop decides its own proxy); resolves with the 200 response. */
async function open(
  url: URL,
  idleTimeoutMs: number,
  field: string,
  source: string,
): Promise<{res: IncomingMessage; url: URL; proxy?: ProxyChoice}> {
  let current = url
  for (let hop = 0; ; hop++) {
    const proxy = proxyFor(current)
    const {res, connectStatus} = await get(current, proxy, idleTimeoutMs, {field, source})
    const status = res.statusCode ?? 0
    if (proxy && ((connectStatus !== undefined && connectStatus !== 200) || status === 407)) {
      res.resume()
      throw proxyRefused(proxy, current, res, {field, source})
    }

    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume()
      if (hop >= MAX_REDIRECTS)
        throw new DownloadError(
          `${field} ${source}: more than ${MAX_REDIRECTS} redirects`,
          'check the URL: the server redirects in a loop',
        )
      const next = new URL(res.headers.location, current)
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new DownloadError(
          `${field} ${source}: redirected to an unsupported URL ${next.href}`,
          'use a URL that serves the file over http or https',
        )
      }

      current = next
      continue
    }

    if (status !== 200) {
      res.resume()
      const msg =
        `${field} ${source}: HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd() +
        (current.href === url.href ? '' : ` (from ${current.href})`) +
        through(proxy)
      if (status === 404 || status === 410)
        throw new InputError(msg, {
          hint: `the server has no file at this URL: check ${field} (release name, version, architecture)`,
        })
      throw new DownloadError(
        msg,
        status >= 500
          ? `the server${proxy ? ' or the proxy' : ''} failed; try again later, or download the file yourself and point the tarball field at it`
          : `check ${field} and whether the server needs credentials (kflan sends none)`,
      )
    }

    return {res, url: current, proxy}
  }
}

/** The proxy answered instead of the server: it refused the tunnel or the credentials. */
function proxyRefused(proxy: ProxyChoice, target: URL, res: IncomingMessage, {field, source}: What): DownloadError {
  const status = res.statusCode ?? 0
  const where = `${target.hostname}:${target.port || (target.protocol === 'https:' ? 443 : 80)}`
  const asked = target.protocol === 'https:' ? ` to CONNECT ${where}` : ` for ${target.href}`
  const direct = `add ${target.hostname} to NO_PROXY if this machine reaches it directly`
  let hint: string
  // 407 is the proxy's "credentials needed"; tinyproxy answers wrong credentials with 401.
  if (status === 407 || status === 401)
    hint = proxy.authorization
      ? `the proxy refused the credentials in ${proxy.variable}: check the user and password there (percent-encoded, e.g. %40 for @); kflan never shows them`
      : `the proxy wants credentials: set ${proxy.variable} to http://user:password@host:port (kflan never shows them)`
  else if (status === 403) hint = `the proxy does not allow ${where}: ask its operator, or ${direct}`
  else hint = `the proxy could not get ${where}: check the URL and try again later, or ${direct}`
  return new DownloadError(
    `${field} ${source}: ${describeProxy(proxy)} answered HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd() + asked,
    hint,
  )
}

function failure(
  err: NodeJS.ErrnoException,
  url: URL,
  {field, source}: What,
  via?: {proxy: ProxyChoice; reached: boolean},
): DownloadError {
  if (via && !via.reached) {
    // The proxy itself could not be reached (or said nothing): name it and where it came from.
    const {message} = describeNetworkError(err, via.proxy.url)
    return new DownloadError(
      `${field} ${source}: ${describeProxy(via.proxy)}: ${message}`,
      `check ${via.proxy.variable} (the proxy's host and port, and that it is running); to reach ${url.host} without a proxy, add ${url.hostname} to NO_PROXY or unset ${via.proxy.variable}`,
    )
  }

  const {message, hint} = describeNetworkError(err, url)
  return new DownloadError(`${field} ${source}: ${message}${through(via?.proxy)}`, hint)
}

/**
 * Downloads `url` to `dest` if its sha256 is `sha256`; otherwise deletes what arrived and throws
 * DigestMismatchError. `dest`'s directory is created.
 */
export async function downloadVerified(
  url: URL,
  sha256: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const field = opts.field ?? 'tarball'
  const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  await fsp.mkdir(dirname(dest), {recursive: true})
  const tmp = join(dirname(dest), `.${basename(dest)}.part-${process.pid}-${randomBytes(4).toString('hex')}`)
  const t0 = performance.now()
  const hash = createHash('sha256')
  let received = 0
  let finalUrl = url.href
  try {
    const {res, url: from, proxy} = await open(url, idleTimeoutMs, field, url.href)
    finalUrl = from.href
    const length = Number(res.headers['content-length'])
    const total = Number.isFinite(length) && length > 0 ? length : undefined
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk)
        received += chunk.length
        opts.onProgress?.(received, total)
        done(null, chunk)
      },
    })
    try {
      await pipeline(res, meter, createWriteStream(tmp, {mode: 0o644, flags: 'wx'}))
    } catch (error) {
      const e = error as NodeJS.ErrnoException
      if (e.syscall === 'open' || e.syscall === 'write')
        throw new DownloadError(
          `${field} ${url.href}: cannot write ${tmp}: ${e.code ?? e.message}`,
          'check free space and permissions of the cache directory ($XDG_CACHE_HOME/kflan)',
        )
      throw failure(e, from, {field, source: url.href}, proxy && {proxy, reached: true})
    }

    if (total !== undefined && received !== total) {
      throw new DownloadError(
        `${field} ${url.href}: the server sent ${received} of ${total} bytes`,
        'run the command again (a partial file is never used)',
      )
    }

    const actual = hash.digest('hex')
    if (actual !== sha256) throw new DigestMismatchError(url.href, sha256, actual, field)
    await fsp.rename(tmp, dest)
    return {bytes: received, ms: performance.now() - t0, finalUrl, via: proxy && describeProxy(proxy)}
  } catch (error) {
    await fsp.rm(tmp, {force: true})
    // The digest's directory goes too when nothing else is in it: no trace of a failed download.
    await fsp.rmdir(dirname(dest)).catch(() => undefined)
    throw error
  }
}

/** Deletes temp files of downloads that died more than a day ago (a killed kflan leaves them). */
export async function removeStalePartials(dir: string, now = Date.now()): Promise<void> {
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch {
    return
  }

  for (const n of names) {
    if (!/^\..+\.part-\d+-[0-9a-f]+$/.test(n)) continue
    const st = await fsp.stat(join(dir, n)).catch(() => undefined)
    if (st && now - st.mtimeMs > 86_400_000) await fsp.rm(join(dir, n), {force: true})
  }
}
