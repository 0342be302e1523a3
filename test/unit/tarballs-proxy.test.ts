/**
 * Which proxy a download URL goes through (src/tarballs/proxy.ts): the variables curl reads, their
 * lower-case forms first, NO_PROXY (proxy-from-env's matching), the scheme-less default, bad values
 * as input errors naming the variable, and credentials never in what is shown. The downloads
 * through a real proxy (tinyproxy) are in test/e2e/proxy.test.ts.
 */
/* eslint-disable camelcase -- http_proxy, https_proxy, no_proxy: spelled as curl reads them */
import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'

import {InputError} from '../../src/errors.js'
import {describeProxy, parseProxy, proxyFor, redactProxyValue} from '../../src/tarballs/proxy.js'

const VARS = [
  'http_proxy',
  'HTTP_PROXY',
  'https_proxy',
  'HTTPS_PROXY',
  'all_proxy',
  'ALL_PROXY',
  'no_proxy',
  'NO_PROXY',
]

function env(vars: Record<string, string>): void {
  for (const v of VARS) vi.stubEnv(v, vars[v] ?? '')
}

const pick = (url: string) => {
  const p = proxyFor(new URL(url))
  return p && `${p.variable} ${p.display}`
}

describe('proxyFor: the proxy variables, as curl reads them', () => {
  beforeEach(() => env({}))

  afterEach(() => vi.unstubAllEnvs())

  it('https URLs use https_proxy/HTTPS_PROXY, http URLs http_proxy/HTTP_PROXY; lower case first; ALL_PROXY for either', () => {
    expect(pick('https://releases.example.com/etcd.tgz')).toBeUndefined()
    env({HTTPS_PROXY: 'http://upper:3128', HTTP_PROXY: 'http://plain:8080'})
    expect(pick('https://releases.example.com/etcd.tgz')).toBe('HTTPS_PROXY http://upper:3128')
    expect(pick('http://releases.example.com/etcd.tgz')).toBe('HTTP_PROXY http://plain:8080')
    env({HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3129'})
    expect(pick('https://releases.example.com/etcd.tgz')).toBe('https_proxy http://lower:3129')
    expect(pick('http://releases.example.com/etcd.tgz')).toBeUndefined()
    env({ALL_PROXY: 'http://all:1080'})
    expect(pick('http://releases.example.com/etcd.tgz')).toBe('ALL_PROXY http://all:1080')
    env({ALL_PROXY: 'http://all:1080', HTTPS_PROXY: 'https://tls-proxy:443'})
    expect(pick('https://releases.example.com/etcd.tgz')).toBe('HTTPS_PROXY https://tls-proxy')
  })

  it('NO_PROXY: exact names, .domain suffixes, host:port, *, lower case first', () => {
    env({HTTPS_PROXY: 'http://p:3128', NO_PROXY: 'mirror.corp, .internal,10.1.2.3,releases.example.com:8443'})
    expect(pick('https://mirror.corp/x.tgz')).toBeUndefined()
    expect(pick('https://files.internal/x.tgz')).toBeUndefined()
    expect(pick('https://10.1.2.3/x.tgz')).toBeUndefined()
    expect(pick('https://releases.example.com:8443/x.tgz')).toBeUndefined()
    expect(pick('https://releases.example.com/x.tgz')).toBe('HTTPS_PROXY http://p:3128')
    // A plain name is that name only (curl would also exempt sub.mirror.corp): docs/inventory.md says so.
    expect(pick('https://sub.mirror.corp/x.tgz')).toBe('HTTPS_PROXY http://p:3128')
    env({HTTPS_PROXY: 'http://p:3128', NO_PROXY: '*'})
    expect(pick('https://anything.example/x.tgz')).toBeUndefined()
    env({HTTPS_PROXY: 'http://p:3128', no_proxy: 'a.example', NO_PROXY: '*'})
    expect(pick('https://b.example/x.tgz')).toBe('HTTPS_PROXY http://p:3128')
  })

  it('a value without a scheme is an http:// proxy (as in curl), not TLS to the proxy', () => {
    env({https_proxy: 'proxy.corp:3128'})
    const p = proxyFor(new URL('https://releases.example.com/x.tgz'))!
    expect(p.url.href).toBe('http://proxy.corp:3128/')
    expect(describeProxy(p)).toBe('proxy http://proxy.corp:3128 (from https_proxy)')
  })

  it('credentials: sent as Proxy-Authorization (percent-decoded), never in the display or the agent URL', () => {
    const p = parseProxy('http://kflan%40corp:p%3Ass%20w0rd@127.0.0.1:3128/', 'HTTPS_PROXY')
    expect(p.display).toBe('http://127.0.0.1:3128')
    expect(p.url.href).toBe('http://127.0.0.1:3128/')
    expect(p.url.username + p.url.password).toBe('')
    expect(Buffer.from(p.authorization!.replace(/^Basic /, ''), 'base64').toString()).toBe('kflan@corp:p:ss w0rd')
    expect(describeProxy(p)).not.toMatch(/kflan|w0rd/)
    expect(parseProxy('http://127.0.0.1:3128', 'HTTPS_PROXY').authorization).toBeUndefined()
  })

  it('an unusable value is an input error (exit 2) naming the variable, with a hint, and no password in it', () => {
    const cases: [string, RegExp][] = [
      ['http://user:s3cret@', /^HTTPS_PROXY=http:\/\/\*\*\*@: not a valid proxy URL$/],
      ['http://user:s3c#ret@proxy:3128', /^HTTPS_PROXY=http:\/\/\*\*\*@proxy:3128: not a valid proxy URL$/],
      [
        'http://user#s3cret@proxy:3128',
        /^HTTPS_PROXY=http:\/\/\*\*\*@proxy:3128: not a valid proxy URL \(percent-encode # \? \/ @ : in the user and password/,
      ],
      ['http://proxy:99999', /^HTTPS_PROXY=http:\/\/proxy:99999: not a valid proxy URL$/],
      [
        'socks5://user:s3cret@proxy:1080',
        /^HTTPS_PROXY=socks5:\/\/proxy:1080: proxy scheme socks5:\/\/ is not supported \(kflan speaks to http:\/\/ and https:\/\/ proxies\)$/,
      ],
      [
        'http://user:s3cret@proxy:3128/path',
        /^HTTPS_PROXY=http:\/\/proxy:3128: a proxy URL has no path, query or fragment$/,
      ],
      [
        'http://user:s3cret%zz@proxy:3128',
        /^HTTPS_PROXY=http:\/\/proxy:3128: the credentials are not valid percent-encoding$/,
      ],
    ]
    for (const [value, message] of cases) {
      env({HTTPS_PROXY: value})
      let err: unknown
      try {
        proxyFor(new URL('https://releases.example.com/x.tgz'))
      } catch (error) {
        err = error
      }

      expect(err, value).toBeInstanceOf(InputError)
      const e = err as InputError
      expect(e.exitCode).toBe(2)
      expect(e.message, value).toMatch(message)
      expect(e.hint).toMatch(/^set HTTPS_PROXY to an http:\/\/ or https:\/\/ proxy URL/)
      expect(`${e.message} ${e.hint}`).not.toContain('s3cret')
    }

    // A bad variable that does not apply (NO_PROXY exempts the host) is not looked at, as in curl.
    env({HTTPS_PROXY: 'socks5://proxy:1080', NO_PROXY: 'releases.example.com'})
    expect(proxyFor(new URL('https://releases.example.com/x.tgz'))).toBeUndefined()
  })

  it('redactProxyValue hides everything up to the last @', () => {
    expect(redactProxyValue('http://a:b@c@proxy:3128')).toBe('http://***@proxy:3128')
    expect(redactProxyValue('a:b@proxy')).toBe('***@proxy')
    expect(redactProxyValue('http://proxy:3128')).toBe('http://proxy:3128')
  })
})
