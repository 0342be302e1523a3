/**
 * Where downloaded release tarballs live on this machine (pure).
 *
 * Decision: `$XDG_CACHE_HOME/kflan` (default `~/.cache/kflan`), not the state directory. A
 * tarball is public, identified by its sha256 alone and the same for every cluster, while the
 * state directory is per cluster and holds secrets: one cache serves every cluster and every
 * state directory, and deleting it only costs a download. Layout:
 *
 *   <cache>/tarballs/sha256-<digest>/<file name from the URL>
 *
 * The directory is the digest the inventory asks for, so a file is only ever found under the
 * digest it was verified against: another digest (a new release, a corrected inventory) cannot
 * reuse it. The file name keeps the URL's last path segment (`.tar.gz` decides how hosts extract).
 */
import {homedir} from 'node:os'
import {isAbsolute, join} from 'node:path'

/** The cache directory: `$XDG_CACHE_HOME/kflan`, or `~/.cache/kflan` (a relative XDG_CACHE_HOME is ignored, as the XDG spec says). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const xdg = env.XDG_CACHE_HOME
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.cache'), 'kflan')
}

/** The last path segment of a URL, reduced to a safe file name (`tarball` when nothing is left). */
export function fileNameOf(url: URL): string {
  const last = decodeURIComponent(url.pathname.split('/').pop() ?? '')
  const safe = last.replaceAll(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '')
  return safe.length > 0 && safe.length <= 200 ? safe : 'tarball'
}

/** Where the tarball with this digest, downloaded from `url`, is kept. */
export function cachedPath(dir: string, url: URL, sha256: string): string {
  if (!/^[a-f0-9]{64}$/.test(sha256)) throw new Error(`cachedPath: not a sha256: ${sha256}`)
  return join(dir, 'tarballs', `sha256-${sha256}`, fileNameOf(url))
}

/** `12.3 MB`: sizes in 10^6 bytes, as download figures are usually given. */
export function formatBytes(n: number): string {
  if (n < 1e6) return `${Math.max(0, Math.round(n / 1e3))} kB`
  return `${(n / 1e6).toFixed(1)} MB`
}

/** A progress line: `12.3 of 40.1 MB (31%), 35.2 MB/s` (no total when the server sent no length). */
export function formatProgress(received: number, total: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? `, ${(received / 1e6 / (elapsedMs / 1000)).toFixed(1)} MB/s` : ''
  if (total === undefined || total <= 0) return `${formatBytes(received)}${rate}`
  const pct = Math.min(100, Math.floor((received / total) * 100))
  return `${formatBytes(received).replace(/ MB$/, '')} of ${formatBytes(total)} (${pct}%)${rate}`
}
