/**
 * Which proxy a download goes through: the environment variables curl, wget, docker and kubeadm
 * read (`https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy`/`HTTP_PROXY` for http URLs,
 * `all_proxy`/`ALL_PROXY` for either, `no_proxy`/`NO_PROXY` for the hosts to reach directly),
 * decided per URL, so a redirect to another host is decided again.
 *
 * Decisions:
 * - The decision (which variable applies, whether NO_PROXY exempts the host) is proxy-from-env's
 *   `getProxyForUrl`, not code of ours. It prefers the lower-case form of a variable, as curl does.
 *   Its NO_PROXY rules: comma- or space-separated entries; `*` exempts everything; `host:port`
 *   exempts that port only; `.example.com` and `*.example.com` exempt the subdomains; a plain
 *   `example.com` exempts that exact name (curl also exempts its subdomains: write
 *   `.example.com` for those); IP addresses match as text (no CIDR ranges, unlike curl ≥ 7.86).
 * - A proxy value without a scheme (`proxy.corp:3128`) means `http://`, as in curl (proxy-from-env
 *   would borrow the URL's scheme and speak TLS to a plain proxy). Supported proxies: `http://`
 *   and `https://` (TLS to the proxy too); anything else, or a value that is not a URL, is an input
 *   error naming the variable (exit 2), raised before anything is downloaded.
 * - Credentials in the proxy URL (`http://user:password@proxy:3128`, percent-encoded) are sent as
 *   Proxy-Authorization (Basic) and never shown: `display` has no user info, and the URL handed to
 *   the agents has none either (the URL in their DEBUG output has none); the credentials go to
 *   them as a header (http-proxy-agent's DEBUG output prints headers: docs/inventory.md says so).
 * - The tunnel (CONNECT for https, absolute-URI requests for http) is https-proxy-agent's and
 *   http-proxy-agent's. The origin's certificate is verified end to end through the tunnel with
 *   Node's trust store (NODE_EXTRA_CA_CERTS included), exactly as without a proxy.
 */
import type {Agent} from 'node:http'

import {HttpProxyAgent} from 'http-proxy-agent'
import {HttpsProxyAgent} from 'https-proxy-agent'
import {getProxyForUrl} from 'proxy-from-env'

import {InputError} from '../errors.js'

export interface ProxyChoice {
  /** The environment variable it came from, as spelled there (e.g. `https_proxy`). */
  variable: string
  /** The proxy without credentials, e.g. `http://127.0.0.1:3128`: the only form ever shown. */
  display: string
  /** The proxy URL without credentials (what the agents get). */
  url: URL
  /** `Basic …` when the proxy URL had credentials. */
  authorization?: string
}

/** The variables, in the order proxy-from-env reads them for a URL of this scheme. */
function candidates(scheme: string): string[] {
  return [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`, 'all_proxy', 'ALL_PROXY']
}

/**
 * A proxy value as shown in an error when it does not parse: everything up to its last `@` (user
 * info, where a password could hide, whatever characters it has) replaced by `***`.
 */
export function redactProxyValue(value: string): string {
  const at = value.lastIndexOf('@')
  if (at === -1) return value
  const scheme = /^[a-z][a-z\d+.-]*:\/\//i.exec(value)?.[0] ?? ''
  return `${scheme}***${value.slice(at)}`
}

/**
 * The proxy for `target`, or undefined for a direct connection (no variable set, or NO_PROXY
 * exempts the host). Throws InputError (exit 2) when the variable that applies is not a usable proxy URL.
 */
export function proxyFor(target: URL): ProxyChoice | undefined {
  // proxy-from-env reads process.env (no other environment can be passed to it).
  if (!getProxyForUrl(target.href)) return undefined
  const scheme = target.protocol.replace(/:$/, '')
  const variable = candidates(scheme).find((v) => process.env[v])
  if (!variable) return undefined
  return parseProxy(process.env[variable]!, variable)
}

/** Parses one proxy variable's value (the scheme defaults to http://, as in curl). */
export function parseProxy(value: string, variable: string): ProxyChoice {
  const raw = value.trim()
  const bad = (why: string, shown = redactProxyValue(raw)) =>
    new InputError(`${variable}=${shown}: ${why}`, {
      hint: `set ${variable} to an http:// or https:// proxy URL such as http://proxy.example.com:3128 (credentials as http://user:password@host:port, percent-encoded), or unset it to connect directly`,
    })
  let url: URL
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`)
  } catch {
    throw bad('not a valid proxy URL')
  }

  // An @ the parser did not take as the end of the user info: an unencoded # ? or / in the
  // password cut the URL short, and what it took for the host is part of the password.
  if (raw.includes('@') && !url.username && !url.password)
    throw bad('not a valid proxy URL (percent-encode # ? / @ : in the user and password, e.g. %23 for #)')
  const shown = `${url.protocol}//${url.host}`
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad(
      `proxy scheme ${url.protocol.replace(/:$/, '')}:// is not supported (kflan speaks to http:// and https:// proxies)`,
      shown,
    )
  if (!url.hostname) throw bad('no proxy host in the URL', shown)
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
    throw bad('a proxy URL has no path, query or fragment', shown)
  let authorization: string | undefined
  if (url.username || url.password) {
    let user: string
    let pass: string
    try {
      user = decodeURIComponent(url.username)
      pass = decodeURIComponent(url.password)
    } catch {
      throw bad('the credentials are not valid percent-encoding', shown)
    }

    authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
  }

  const bare = new URL(`${url.protocol}//${url.host}`)
  return {variable, display: `${bare.protocol}//${bare.host}`, url: bare, authorization}
}

/** A one-request agent that goes through `proxy` to `target` (CONNECT for https, absolute URI for http). */
export function proxyAgent(proxy: ProxyChoice, target: URL): Agent {
  const headers: Record<string, string> = proxy.authorization ? {'Proxy-Authorization': proxy.authorization} : {}
  return target.protocol === 'https:'
    ? new HttpsProxyAgent(proxy.url, {headers, keepAlive: false})
    : new HttpProxyAgent(proxy.url, {headers, keepAlive: false})
}

/** `proxy http://127.0.0.1:3128 (from HTTPS_PROXY)`, for messages. */
export function describeProxy(proxy: ProxyChoice): string {
  return `proxy ${proxy.display} (from ${proxy.variable})`
}
