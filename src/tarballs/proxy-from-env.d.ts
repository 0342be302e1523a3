// proxy-from-env 2.x ships no type declarations (and @types/proxy-from-env describes 1.x):
// the one function kflan uses, as its README documents it.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from the *_proxy / NO_PROXY environment variables, or '' for none. */
  export function getProxyForUrl(url: string | URL): string
}
