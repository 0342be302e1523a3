/**
 * etcdctl's output (pure): JSON with 64-bit IDs kept exact, the telling error behind "context
 * deadline exceeded", `get -w json` key/values, byte counts for people. Moved whole from
 * doctor/etcd.ts; used by the etcd, flannel and network checks.
 */
import {parseEtcdJson} from '../cluster/etcdctl.js'
import {type RunOut} from './types.js'

/** The specific cause in etcdctl's output (a TLS or dial error), if it names one. */
export function specificError(r: RunOut): string | undefined {
  const text = `${r.stderr}\n${r.stdout}`.replaceAll(String.raw`\"`, '"')
  const m =
    /(x509: [^"\n]+)/.exec(text) ??
    /(tls: [^"\n]+)/.exec(text) ??
    /(connect: connection refused)/.exec(text) ??
    /(connect: no route to host)/.exec(text) ??
    /(i\/o timeout)/.exec(text) ??
    /(etcdserver: [^"\n]+)/.exec(text) ??
    /(etcdctl: not found|No such file or directory)/.exec(text)
  return m?.[1].replace(/[\s,;.]+$/, '')
}

/** The most telling error in etcdctl's output: the TLS or dial error behind "context deadline exceeded". */
export function etcdctlError(r: RunOut, fallback?: string): string {
  const specific = specificError(r)
  if (specific) return specific
  if (fallback) return fallback
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('{'))
  return lines.at(-1) ?? (r.rc === null ? 'not run' : `etcdctl exited ${r.rc}`)
}

/** `etcdctl get -w json` → keys and values (base64-decoded); undefined when not parseable. */
export function parseGetJson(stdout: string): {key: string; value: string; lease?: string}[] | undefined {
  const j = parseEtcdJson<{header?: unknown; kvs?: {key: string; value?: string; lease?: string}[]}>(
    stdout.replaceAll(/("lease"\s*:\s*)(\d+)/g, '$1"$2"'),
  )
  if (!j || typeof j !== 'object' || !('header' in j)) return undefined
  const dec = (b: string | undefined) => Buffer.from(b ?? '', 'base64').toString('utf8')
  return (j.kvs ?? []).map((kv) => ({key: dec(kv.key), value: dec(kv.value), ...(kv.lease ? {lease: kv.lease} : {})}))
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }

  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`
}
