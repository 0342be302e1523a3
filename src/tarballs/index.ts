import {Listr} from 'listr2'
/**
 * The release tarballs of a run, as local files: a URL tarball is taken from the download cache
 * (src/tarballs/cache.ts) or downloaded into it, a local one is used where it is. Every sha256
 * the inventory gives is checked here, before any host is contacted: a mismatch stops the run
 * with nothing installed anywhere. The rest of kflan (binaries phase, upload) then only ever sees
 * verified local paths.
 */
import {existsSync, promises as fsp} from 'node:fs'
import {basename, dirname} from 'node:path'

import type {Cluster} from '../inventory/model.js'

import {listrOptions, type Output} from '../engine/listr.js'
import {InputError} from '../errors.js'
import {localSha256} from '../remote/upload.js'
import {cacheDir, cachedPath, formatBytes, formatProgress} from './cache.js'
import {downloadVerified, removeStalePartials} from './download.js'
import {DigestMismatchError} from './errors.js'
import {describeProxy, proxyFor} from './proxy.js'

export {cacheDir} from './cache.js'

export type TarballSection = 'etcd' | 'flannel'

export interface PreparedTarball {
  /** Inventory section: `etcd` or `flannel`. */
  section: TarballSection
  /** As the inventory gives it (URL, or the resolved local path). */
  source: string
  /** The local file to use. */
  path: string
  action: 'downloaded' | 'cached' | 'local' | 'local-verified'
  /** Downloaded through this proxy: `proxy http://host:port (from HTTPS_PROXY)`, never with credentials. */
  via?: string
  bytes?: number
  ms?: number
}

export interface PrepareOptions {
  /** Refuse to download: URL tarballs must be in the cache already. */
  offline: boolean
  /** Default: cacheDir() ($XDG_CACHE_HOME/kflan or ~/.cache/kflan). */
  cacheDir?: string
  /** 'auto': listr2's progress on a TTY, plain lines otherwise; 'silent' for tests. */
  output: Output
  /** The tarballs the run installs from (default both); the others are left as they are. */
  sections?: TarballSection[]
  /** Gets one line per tarball for the run log. */
  note?: (message: string) => void
}

const isUrl = (t: string) => /^https?:\/\//.test(t)

/** Checks every tarball (downloading what is missing) and returns the cluster with local paths. */
export async function prepareTarballs(
  cluster: Cluster,
  opts: PrepareOptions,
): Promise<{cluster: Cluster; tarballs: PreparedTarball[]}> {
  const dir = opts.cacheDir ?? cacheDir()
  const out: PreparedTarball[] = []
  const downloads: {section: TarballSection; url: URL; sha256: string; dest: string}[] = []
  for (const section of opts.sections ?? (['etcd', 'flannel'] as const)) {
    const {tarball, sha256} = cluster[section]
    const field = `${section}.tarball`
    if (!isUrl(tarball)) {
      if (sha256) {
        const actual = (await localSha256(tarball)).sha256
        if (actual !== sha256) throw new DigestMismatchError(tarball, sha256, actual, field)
      }

      out.push({section, source: tarball, path: tarball, action: sha256 ? 'local-verified' : 'local'})
      continue
    }

    // The schema requires a sha256 with a URL (validate.ts); the cache is keyed by it.
    const digest = sha256!
    const url = new URL(tarball)
    const dest = cachedPath(dir, url, digest)
    if (existsSync(dest)) {
      if ((await localSha256(dest)).sha256 === digest) {
        out.push({section, source: tarball, path: dest, action: 'cached'})
        continue
      }

      // Only verified files are renamed into the cache; one that changed since is not used.
      opts.note?.(`${dest} no longer matches sha256 ${digest}: removed, downloading again`)
      await fsp.rm(dest, {force: true})
    }

    if (downloads.some((d) => d.dest === dest)) {
      out.push({section, source: tarball, path: dest, action: 'cached'})
      continue
    }

    if (opts.offline) {
      throw new InputError(
        `${field} ${tarball}: not in the download cache (${dest}) and --offline forbids downloading`,
        {
          hint: 'run once without --offline to fill the cache (it is reused afterwards), or download the file yourself and set the tarball field to its local path',
        },
      )
    }

    // A proxy variable that is not a usable URL is an input error before anything is downloaded
    // (redirects decide their proxy again when they happen).
    proxyFor(url)
    downloads.push({section, url, sha256: digest, dest})
    out.push({section, source: tarball, path: dest, action: 'downloaded'})
  }

  if (downloads.length > 0) {
    const tty = opts.output === 'auto' && process.stdout.isTTY === true
    const every = tty ? 500 : 5000
    const tasks = downloads.map((d) => {
      const proxy = proxyFor(d.url)
      return {
        title: `download ${basename(d.dest)} from ${d.url.host}${viaText(proxy && describeProxy(proxy))}`,
        async task(_: unknown, task: {output: string; title: string}) {
          await removeStalePartials(dirname(d.dest))
          const t0 = Date.now()
          let last = t0
          const r = await downloadVerified(d.url, d.sha256, d.dest, {
            field: `${d.section}.tarball`,
            onProgress(received, total) {
              const now = Date.now()
              if (now - last < every) return
              last = now
              task.output = formatProgress(received, total, now - t0)
            },
          }).catch((error: unknown) => {
            // The task line says what went wrong in short; the command prints the whole error.
            const short = (error instanceof Error ? error.message : String(error))
              .split('\n')[0]
              .replace(`${d.section}.tarball ${d.url.href}: `, '')
            throw Object.assign(new Error(short), {original: error})
          })
          const entry = out.find((o) => o.section === d.section)!
          Object.assign(entry, {bytes: r.bytes, ms: r.ms, via: r.via})
          task.title = `downloaded ${basename(d.dest)}${viaText(r.via)}: ${describe(entry)}`
          opts.note?.(`downloaded ${r.finalUrl}${viaText(r.via)} → ${d.dest}: ${describe(entry)}`)
        },
      }
    })
    await new Listr(tasks, listrOptions(opts.output)).run().catch((error: {original?: unknown}) => {
      throw error.original ?? error
    })
  }

  const local = (section: TarballSection) => out.find((o) => o.section === section)?.path ?? cluster[section].tarball
  return {
    cluster: {
      ...cluster,
      etcd: {...cluster.etcd, tarball: local('etcd')},
      flannel: {...cluster.flannel, tarball: local('flannel')},
    },
    tarballs: out,
  }
}

/** ` through proxy http://host:port (from HTTPS_PROXY)`, or nothing for a direct connection. */
const viaText = (via: string | undefined) => (via ? ` through ${via}` : '')

function describe(t: PreparedTarball): string {
  if (t.bytes === undefined || t.ms === undefined) return 'sha256 ok'
  const s = t.ms / 1000
  return `${formatBytes(t.bytes)} in ${s.toFixed(1)} s, ${(t.bytes / 1e6 / Math.max(s, 0.001)).toFixed(1)} MB/s, sha256 ok`
}

/** One line per tarball that came from a URL or had its sha256 checked, for the command's output. */
export function tarballSummary(tarballs: PreparedTarball[]): string[] {
  return tarballs.flatMap((t) => {
    const name = basename(t.path)
    switch (t.action) {
      case 'cached': {
        return [`${name} from the download cache (${t.path}), sha256 ok`]
      }

      case 'downloaded': {
        return [`${name} downloaded from ${t.source}${viaText(t.via)} (${describe(t)})`]
      }

      case 'local-verified': {
        return [`${name} sha256 ok`]
      }

      default: {
        return []
      }
    }
  })
}
